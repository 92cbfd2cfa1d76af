package io.modemu.options;

import java.util.Locale;

/** Parses and prints sizes the way QEMU does: a number with an optional suffix B, K, M, G, T, P, E (powers of 1024). */
public final class Sizes {
    private Sizes() {
    }

    /**
     * Parses {@code text} as a size in bytes.
     *
     * @param text        for example {@code 512}, {@code 4k}, {@code 1.5G}
     * @param defaultUnit multiplier for a number without suffix (1 for bytes, 1 MiB for QEMU's {@code -m})
     * @param what        the option being parsed, named in the error
     * @throws ConfigurationException if {@code text} is not a size
     */
    public static long parse(String text, long defaultUnit, String what) {
        String t = text == null ? "" : text.trim();
        if (t.isEmpty()) {
            throw new ConfigurationException(what + ": empty size");
        }
        long unit = defaultUnit;
        char last = Character.toUpperCase(t.charAt(t.length() - 1));
        int suffix = "BKMGTPE".indexOf(last);
        if (suffix >= 0) {
            unit = 1L << (10 * suffix);
            t = t.substring(0, t.length() - 1);
            if (t.endsWith("i") || t.endsWith("I")) {
                throw new ConfigurationException(what + ": '" + text + "' is not a size (use K, M, G, T: they mean KiB, MiB, ...)");
            }
        }
        try {
            if (t.isEmpty() || t.startsWith("-") || t.startsWith("+")) {
                throw new NumberFormatException();
            }
            double v;
            long whole;
            if (t.startsWith("0x") || t.startsWith("0X")) {
                whole = Long.parseUnsignedLong(t.substring(2), 16);
                v = whole;
            } else {
                v = Double.parseDouble(t);
                if (!Double.isFinite(v) || t.toLowerCase(Locale.ROOT).contains("e") || t.toLowerCase(Locale.ROOT).contains("n")) {
                    throw new NumberFormatException();
                }
            }
            double bytes = v * unit;
            if (bytes >= 0x1p63) {
                throw new ConfigurationException(what + ": '" + text + "' is too large");
            }
            double rounded = Math.floor(bytes);
            if (rounded != bytes) {
                throw new ConfigurationException(what + ": '" + text + "' is not a whole number of bytes");
            }
            return (long) rounded;
        } catch (NumberFormatException e) {
            throw new ConfigurationException(what + ": '" + text + "' is not a size (expected a number with an optional suffix K, M, G or T)");
        }
    }

    /** Parses a size in bytes (no suffix means bytes). */
    public static long parse(String text, String what) {
        return parse(text, 1, what);
    }

    /** Formats a byte count for people: {@code 1.0 GiB}, {@code 512 KiB}, {@code 17 B}. */
    public static String human(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = bytes;
        int i = -1;
        while (v >= 1024 && i < units.length - 1) {
            v /= 1024;
            i++;
        }
        return String.format(Locale.ROOT, v >= 100 ? "%.0f %s" : "%.1f %s", v, units[i]);
    }
}
