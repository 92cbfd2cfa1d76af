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
        java.util.regex.Matcher m = SIZE.matcher(t);
        if (!m.matches()) {
            String hint = t.matches("[0-9.]+[KkMmGgTt][iI][bB]?") ? " (write K, M, G, T: they already mean KiB, MiB, ...)"
                    : " (expected a number with an optional suffix K, M, G or T)";
            throw new ConfigurationException(what + ": '" + text + "' is not a size" + hint);
        }
        long unit = m.group(3) == null ? defaultUnit : 1L << (10 * "BKMGTPE".indexOf(Character.toUpperCase(m.group(3).charAt(0))));
        double v;
        if (m.group(1) != null) {
            try {
                v = Long.parseUnsignedLong(m.group(1).substring(2), 16);
            } catch (NumberFormatException e) {
                throw new ConfigurationException(what + ": '" + text + "' is too large");
            }
        } else {
            v = Double.parseDouble(m.group(2));
        }
        double bytes = v * unit;
        if (bytes >= 0x1p63) {
            throw new ConfigurationException(what + ": '" + text + "' is too large");
        }
        if (Math.floor(bytes) != bytes) {
            throw new ConfigurationException(what + ": '" + text + "' is not a whole number of bytes");
        }
        return (long) bytes;
    }

    private static final java.util.regex.Pattern SIZE =
            java.util.regex.Pattern.compile("(?:(0[xX][0-9a-fA-F]{1,16})|([0-9]{1,19}(?:\\.[0-9]{1,9})?))([bBkKmMgGtTpPeE])?");

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
