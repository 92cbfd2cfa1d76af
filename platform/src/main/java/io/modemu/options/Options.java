package io.modemu.options;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * A set of QEMU-style {@code key=value} options, for example the argument of {@code -drive} or {@code -device}.
 *
 * <p>This is the one place that parses QEMU's syntax: comma-separated {@code key=value} pairs, where
 * {@code ,,} stands for a literal comma, and an optional first element without {@code =} that is
 * the value of an implied key ({@code -device virtio-blk-device,drive=d0} implies
 * {@code driver=virtio-blk-device}). Typed getters check values and name the offending key in their
 * errors; {@link #checkAllUsed()} rejects keys nobody asked for, so a typo never passes silently.
 *
 * <p>Not thread-safe: an instance belongs to the code that configures one object.
 */
public final class Options {
    private final String context;
    private final Map<String, String> values;
    private final Set<String> used = new HashSet<>();

    private Options(String context, Map<String, String> values) {
        this.context = context;
        this.values = values;
    }

    /**
     * Parses {@code text}.
     *
     * @param context    what is being parsed, for errors (for example {@code -drive})
     * @param text       the option text
     * @param impliedKey key of a leading element without {@code =}, or {@code null} if none is allowed
     * @throws ConfigurationException if the text is malformed or repeats a key
     */
    public static Options parse(String context, String text, String impliedKey) {
        Map<String, String> map = new LinkedHashMap<>();
        List<String> parts = split(context, text);
        for (int i = 0; i < parts.size(); i++) {
            String part = parts.get(i);
            int eq = part.indexOf('=');
            String key;
            String value;
            if (eq < 0) {
                if (i == 0 && impliedKey != null) {
                    key = impliedKey;
                    value = part;
                } else {
                    throw new ConfigurationException(context + ": '" + part + "' has no value (expected key=value)");
                }
            } else {
                key = part.substring(0, eq);
                value = part.substring(eq + 1);
            }
            if (key.isEmpty()) {
                throw new ConfigurationException(context + ": empty option name in '" + text + "'");
            }
            if (map.putIfAbsent(key, value) != null) {
                throw new ConfigurationException(context + ": option '" + key + "' given twice");
            }
        }
        return new Options(context, map);
    }

    /** Options from a ready map (for example from JSON or from code). */
    public static Options of(String context, Map<String, String> values) {
        return new Options(context, new LinkedHashMap<>(values));
    }

    private static List<String> split(String context, String text) {
        List<String> parts = new ArrayList<>();
        if (text == null || text.isEmpty()) {
            return parts;
        }
        StringBuilder cur = new StringBuilder();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == ',') {
                if (i + 1 < text.length() && text.charAt(i + 1) == ',') {
                    cur.append(',');
                    i++;
                } else {
                    if (cur.isEmpty()) {
                        throw new ConfigurationException(context + ": empty element in '" + text + "'");
                    }
                    parts.add(cur.toString());
                    cur.setLength(0);
                }
            } else {
                cur.append(c);
            }
        }
        if (cur.isEmpty()) {
            throw new ConfigurationException(context + ": '" + text + "' ends with a comma");
        }
        parts.add(cur.toString());
        return parts;
    }

    /** What is being configured, as used in error messages. */
    public String context() {
        return context;
    }

    /** A copy of these options with a different context name (for example once the device id is known). */
    public Options withContext(String newContext) {
        Options o = new Options(newContext, values);
        o.used.addAll(used);
        return o;
    }

    public boolean has(String key) {
        return values.containsKey(key);
    }

    /** The raw keys and values, in the order given. */
    public Map<String, String> asMap() {
        return Collections.unmodifiableMap(values);
    }

    /** Marks {@code key} as understood without reading it. */
    public void accept(String key) {
        used.add(key);
    }

    public String string(String key) {
        String v = values.get(key);
        used.add(key);
        if (v == null) {
            throw new ConfigurationException(context + ": option '" + key + "' is required");
        }
        return v;
    }

    public String string(String key, String defaultValue) {
        used.add(key);
        return values.getOrDefault(key, defaultValue);
    }

    public boolean bool(String key, boolean defaultValue) {
        used.add(key);
        String v = values.get(key);
        if (v == null) {
            return defaultValue;
        }
        return switch (v.toLowerCase(Locale.ROOT)) {
            case "on", "yes", "true", "y" -> true;
            case "off", "no", "false", "n" -> false;
            default -> throw new ConfigurationException(context + ": option '" + key + "' must be on or off, not '" + v + "'");
        };
    }

    public long integer(String key, long defaultValue, long min, long max) {
        used.add(key);
        String v = values.get(key);
        if (v == null) {
            return defaultValue;
        }
        long n;
        try {
            n = v.startsWith("0x") || v.startsWith("0X") ? Long.parseLong(v.substring(2), 16) : Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new ConfigurationException(context + ": option '" + key + "' must be a number, not '" + v + "'");
        }
        if (n < min || n > max) {
            throw new ConfigurationException(context + ": option '" + key + "' must be between " + min + " and " + max + ", not " + n);
        }
        return n;
    }

    /** A size in bytes ({@code 4k}, {@code 1G}); a plain number means bytes. */
    public long size(String key, long defaultValue) {
        used.add(key);
        String v = values.get(key);
        return v == null ? defaultValue : Sizes.parse(v, context + ": option '" + key + "'");
    }

    /** A duration: a number with suffix ns, us, ms or s (a plain number means {@code defaultUnitNanos}). */
    public long durationNanos(String key, long defaultNanos, long defaultUnitNanos) {
        used.add(key);
        String v = values.get(key);
        if (v == null) {
            return defaultNanos;
        }
        String t = v.trim().toLowerCase(Locale.ROOT);
        long unit = defaultUnitNanos;
        for (var s : List.of(Map.entry("ns", 1L), Map.entry("us", 1_000L), Map.entry("ms", 1_000_000L), Map.entry("s", 1_000_000_000L))) {
            if (t.endsWith(s.getKey())) {
                unit = s.getValue();
                t = t.substring(0, t.length() - s.getKey().length());
                break;
            }
        }
        try {
            double d = Double.parseDouble(t);
            if (d < 0 || !Double.isFinite(d) || t.contains("e") || t.contains("n")) {
                throw new NumberFormatException();
            }
            return (long) (d * unit);
        } catch (NumberFormatException e) {
            throw new ConfigurationException(context + ": option '" + key + "' must be a duration such as 5ms or 200us, not '" + v + "'");
        }
    }

    /** One of {@code allowed} (case-insensitive); returns it in the spelling of {@code allowed}. */
    public String choice(String key, String defaultValue, List<String> allowed) {
        used.add(key);
        String v = values.get(key);
        if (v == null) {
            return defaultValue;
        }
        for (String a : allowed) {
            if (a.equalsIgnoreCase(v)) {
                return a;
            }
        }
        throw new ConfigurationException(context + ": option '" + key + "' must be one of " + String.join(", ", allowed) + ", not '" + v + "'");
    }

    /** Throws if a key was given that no getter asked for. */
    public void checkAllUsed() {
        for (String k : values.keySet()) {
            if (!used.contains(k)) {
                throw new ConfigurationException(context + ": unknown option '" + k + "'");
            }
        }
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        values.forEach((k, v) -> {
            if (!sb.isEmpty()) {
                sb.append(',');
            }
            sb.append(k).append('=').append(v.replace(",", ",,"));
        });
        return sb.toString();
    }
}
