package io.modemu.migration;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Migration parameters with QEMU's names, defaults and ranges (migrate-set-parameters,
 * query-migrate-parameters), plus two of Modemu's own, prefixed {@code x-} as QEMU does for what is
 * not part of its stable interface. Immutable; validated on construction.
 *
 * @param downtimeLimitMs          {@code downtime-limit}: the longest the VM may stay stopped for the switch-over, in ms (300)
 * @param maxBandwidth             {@code max-bandwidth}: bytes per second while the VM runs, 0 for no limit (128 MiB/s,
 *                                 QEMU's default; the switch-over itself is never throttled)
 * @param multifdChannels          {@code multifd-channels}: parallel connections with capability {@code multifd} (2)
 * @param cpuThrottleInitial       {@code cpu-throttle-initial}: first auto-converge throttle, percent (20)
 * @param cpuThrottleIncrement     {@code cpu-throttle-increment}: each further step, percent (10)
 * @param maxCpuThrottle           {@code max-cpu-throttle}: the most auto-converge throttles, percent (99)
 * @param throttleTriggerThreshold {@code throttle-trigger-threshold}: throttle when the guest dirtied more than this percentage
 *                                 of what was sent in a pass, twice (50)
 * @param ioTimeoutMs              {@code x-io-timeout}: a peer that takes or sends nothing this long fails the migration, in ms (10000)
 * @param timeoutMs                {@code x-timeout}: a migration that has not completed after this long fails, in ms; 0 for no
 *                                 limit (0: a migration that cannot converge keeps iterating until cancelled)
 */
public record MigrationParameters(long downtimeLimitMs, long maxBandwidth, int multifdChannels, int cpuThrottleInitial, int cpuThrottleIncrement,
                                  int maxCpuThrottle, int throttleTriggerThreshold, long ioTimeoutMs, long timeoutMs) {
    /** QEMU's MAX_MIGRATE_DOWNTIME: 2000 seconds. */
    public static final long MAX_DOWNTIME_MS = 2_000_000;

    public MigrationParameters {
        check("downtime-limit", downtimeLimitMs, 0, MAX_DOWNTIME_MS, "an integer in the range of 0 to 2000000 milliseconds");
        check("max-bandwidth", maxBandwidth, 0, Long.MAX_VALUE, "an integer in the range of 0 to 2^63-1 bytes/second");
        check("multifd-channels", multifdChannels, 1, 255, "an integer in the range of 1 to 255");
        check("cpu-throttle-initial", cpuThrottleInitial, 1, 99, "an integer in the range of 1 to 99");
        check("cpu-throttle-increment", cpuThrottleIncrement, 1, 99, "an integer in the range of 1 to 99");
        check("max-cpu-throttle", maxCpuThrottle, 1, 99, "an integer in the range of 1 to 99");
        check("throttle-trigger-threshold", throttleTriggerThreshold, 1, 100, "an integer in the range of 1 to 100");
        check("x-io-timeout", ioTimeoutMs, 1, 3_600_000, "an integer in the range of 1 to 3600000 milliseconds");
        check("x-timeout", timeoutMs, 0, Long.MAX_VALUE, "a non-negative integer (milliseconds, 0 for no limit)");
    }

    private static void check(String name, long v, long min, long max, String expected) {
        if (v < min || v > max) {
            throw new IllegalArgumentException("Parameter '" + name + "' expects " + expected);
        }
    }

    /** QEMU's defaults. */
    public static MigrationParameters defaults() {
        return new MigrationParameters(300, 128L << 20, 2, 20, 10, 99, 50, 10_000, 0);
    }

    /** For query-migrate-parameters: every parameter under its QEMU name. */
    public Map<String, Object> toQmp() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("downtime-limit", downtimeLimitMs);
        m.put("max-bandwidth", maxBandwidth);
        m.put("multifd-channels", multifdChannels);
        m.put("cpu-throttle-initial", cpuThrottleInitial);
        m.put("cpu-throttle-increment", cpuThrottleIncrement);
        m.put("max-cpu-throttle", maxCpuThrottle);
        m.put("throttle-trigger-threshold", throttleTriggerThreshold);
        m.put("x-io-timeout", ioTimeoutMs);
        m.put("x-timeout", timeoutMs);
        return m;
    }

    /**
     * For migrate-set-parameters: these parameters with the ones in {@code arguments} changed.
     *
     * @throws IllegalArgumentException with QEMU's wording for an unknown parameter, a value that is
     *                                  not an integer, or one out of range
     */
    public MigrationParameters withQmp(Map<String, ?> arguments) {
        Map<String, Object> m = toQmp();
        for (Map.Entry<String, ?> e : arguments.entrySet()) {
            if (!m.containsKey(e.getKey())) {
                throw new IllegalArgumentException("Parameter '" + e.getKey() + "' is unexpected");
            }
            Object v = e.getValue();
            if (!(v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte
                    || v instanceof java.math.BigInteger bi && bi.bitLength() < 64)) {
                throw new IllegalArgumentException("Invalid parameter type for '" + e.getKey() + "', expected: integer");
            }
            m.put(e.getKey(), ((Number) v).longValue());
        }
        return new MigrationParameters(num(m, "downtime-limit"), num(m, "max-bandwidth"), intNum(m, "multifd-channels"),
                intNum(m, "cpu-throttle-initial"), intNum(m, "cpu-throttle-increment"), intNum(m, "max-cpu-throttle"),
                intNum(m, "throttle-trigger-threshold"), num(m, "x-io-timeout"), num(m, "x-timeout"));
    }

    private static long num(Map<String, Object> m, String k) {
        return ((Number) m.get(k)).longValue();
    }

    private static int intNum(Map<String, Object> m, String k) {
        long v = num(m, k);
        return (int) Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, v));
    }

    public MigrationParameters withDowntimeLimitMs(long v) {
        return new MigrationParameters(v, maxBandwidth, multifdChannels, cpuThrottleInitial, cpuThrottleIncrement, maxCpuThrottle,
                throttleTriggerThreshold, ioTimeoutMs, timeoutMs);
    }

    public MigrationParameters withMaxBandwidth(long v) {
        return new MigrationParameters(downtimeLimitMs, v, multifdChannels, cpuThrottleInitial, cpuThrottleIncrement, maxCpuThrottle,
                throttleTriggerThreshold, ioTimeoutMs, timeoutMs);
    }

    public MigrationParameters withMultifdChannels(int v) {
        return new MigrationParameters(downtimeLimitMs, maxBandwidth, v, cpuThrottleInitial, cpuThrottleIncrement, maxCpuThrottle,
                throttleTriggerThreshold, ioTimeoutMs, timeoutMs);
    }

    public MigrationParameters withIoTimeoutMs(long v) {
        return new MigrationParameters(downtimeLimitMs, maxBandwidth, multifdChannels, cpuThrottleInitial, cpuThrottleIncrement, maxCpuThrottle,
                throttleTriggerThreshold, v, timeoutMs);
    }

    public MigrationParameters withTimeoutMs(long v) {
        return new MigrationParameters(downtimeLimitMs, maxBandwidth, multifdChannels, cpuThrottleInitial, cpuThrottleIncrement, maxCpuThrottle,
                throttleTriggerThreshold, ioTimeoutMs, v);
    }
}
