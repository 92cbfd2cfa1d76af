package io.modemu.monitor;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The {@code "arguments"} of one command, with QEMU's argument errors: a missing argument, one of
 * the wrong type, and one the command does not take each give a GenericError naming it.
 */
public final class CommandArguments {
    private final Map<String, Object> values;
    private final Set<String> read = new HashSet<>();

    public CommandArguments(Map<String, Object> values) {
        this.values = values;
    }

    public Map<String, Object> asMap() {
        return values;
    }

    public boolean has(String name) {
        read.add(name);
        return values.containsKey(name);
    }

    private Object get(String name, boolean required) {
        read.add(name);
        Object v = values.get(name);
        if (v == null && required) {
            throw QmpError.generic("Parameter '" + name + "' is missing");
        }
        return v;
    }

    private static QmpError type(String name, String expected) {
        return QmpError.generic("Invalid parameter type for '" + name + "', expected: " + expected);
    }

    public String string(String name) {
        Object v = get(name, true);
        if (!(v instanceof String s)) {
            throw type(name, "string");
        }
        return s;
    }

    public String string(String name, String defaultValue) {
        Object v = get(name, false);
        if (v == null) {
            return defaultValue;
        }
        if (!(v instanceof String s)) {
            throw type(name, "string");
        }
        return s;
    }

    public boolean bool(String name, boolean defaultValue) {
        Object v = get(name, false);
        if (v == null) {
            return defaultValue;
        }
        if (!(v instanceof Boolean b)) {
            throw type(name, "boolean");
        }
        return b;
    }

    public long integer(String name, long defaultValue) {
        Object v = get(name, false);
        if (v == null) {
            return defaultValue;
        }
        if (!(v instanceof Number n) || v instanceof Double || v instanceof Float) {
            throw type(name, "integer");
        }
        return n.longValue();
    }

    public long integer(String name) {
        if (!values.containsKey(name)) {
            get(name, true);
        }
        return integer(name, 0);
    }

    /** A list of objects ({@code [{"capability": ..., "state": ...}]} and the like). */
    @SuppressWarnings("unchecked")
    public List<Map<String, Object>> objects(String name) {
        Object v = get(name, true);
        if (!(v instanceof List<?> l) || !l.stream().allMatch(e -> e instanceof Map)) {
            throw type(name, "array of objects");
        }
        return (List<Map<String, Object>>) v;
    }

    /** Fails on an argument no getter asked for: "Parameter 'x' is unexpected". */
    public void checkNoneUnexpected() {
        for (String k : values.keySet()) {
            if (!read.contains(k)) {
                throw QmpError.generic("Parameter '" + k + "' is unexpected");
            }
        }
    }
}
