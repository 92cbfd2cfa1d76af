package io.modemu.migration;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A snapshot of a migration, shaped like QEMU's {@code MigrationInfo} (query-migrate). Fields that
 * QEMU leaves out in a status are null here and absent from {@link #toQmp()}.
 *
 * @param status                 the status
 * @param totalTimeMs            {@code total-time}: since the migration started, or its whole length once completed
 * @param setupTimeMs            {@code setup-time}: connecting and the configuration exchange
 * @param downtimeMs             {@code downtime}: from the stop on the source to the destination running (completed only)
 * @param expectedDowntimeMs     {@code expected-downtime}: remaining dirty RAM over the measured bandwidth (while active)
 * @param ram                    {@code ram}: RAM transfer statistics
 * @param cpuThrottlePercentage  {@code cpu-throttle-percentage}: the auto-converge throttle now
 * @param errorDesc              {@code error-desc}: why it failed
 */
public record MigrationInfo(MigrationStatus status, Long totalTimeMs, Long setupTimeMs, Long downtimeMs, Long expectedDowntimeMs, Ram ram,
                            Integer cpuThrottlePercentage, String errorDesc) {
    /**
     * QEMU's {@code MigrationStats}.
     *
     * @param transferred     bytes sent (every channel, headers included)
     * @param remaining       dirty bytes not sent yet
     * @param total           guest RAM in bytes
     * @param duplicate       zero pages (sent as a marker)
     * @param normal          non-zero pages sent
     * @param normalBytes     their bytes
     * @param mbps            throughput in Mbit/s over the last period
     * @param dirtySyncCount  dirty-bitmap synchronisations (passes)
     * @param pagesPerSecond  pages sent per second over the last period
     * @param dirtyPagesRate  pages the guest dirtied per second, measured between the last two synchronisations
     * @param multifdBytes    bytes sent over the parallel data channels
     * @param precopyBytes    bytes sent while the VM ran
     * @param downtimeBytes   bytes sent while it was stopped
     */
    public record Ram(long transferred, long remaining, long total, long duplicate, long normal, long normalBytes, double mbps, long dirtySyncCount,
                      long pagesPerSecond, long dirtyPagesRate, long multifdBytes, long precopyBytes, long downtimeBytes) {
        public Map<String, Object> toQmp() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("transferred", transferred);
            m.put("remaining", remaining);
            m.put("total", total);
            m.put("duplicate", duplicate);
            m.put("skipped", 0L);
            m.put("normal", normal);
            m.put("normal-bytes", normalBytes);
            m.put("dirty-pages-rate", dirtyPagesRate);
            m.put("mbps", mbps);
            m.put("dirty-sync-count", dirtySyncCount);
            m.put("postcopy-requests", 0L);
            m.put("page-size", (long) io.modemu.machine.DirtyBitmap.PAGE_SIZE);
            m.put("multifd-bytes", multifdBytes);
            m.put("pages-per-second", pagesPerSecond);
            m.put("precopy-bytes", precopyBytes);
            m.put("downtime-bytes", downtimeBytes);
            m.put("postcopy-bytes", 0L);
            return m;
        }
    }

    /** No migration has run: query-migrate answers {@code {}}. */
    public static MigrationInfo none() {
        return new MigrationInfo(MigrationStatus.NONE, null, null, null, null, null, null, null);
    }

    /** The reply of query-migrate, with QEMU's member names. */
    public Map<String, Object> toQmp() {
        Map<String, Object> m = new LinkedHashMap<>();
        if (status == MigrationStatus.NONE) {
            return m;
        }
        m.put("status", status.qapiName());
        if (ram != null) {
            m.put("ram", ram.toQmp());
        }
        put(m, "total-time", totalTimeMs);
        put(m, "expected-downtime", expectedDowntimeMs);
        put(m, "downtime", downtimeMs);
        put(m, "setup-time", setupTimeMs);
        put(m, "cpu-throttle-percentage", cpuThrottlePercentage == null ? null : cpuThrottlePercentage.longValue());
        if (errorDesc != null) {
            m.put("error-desc", errorDesc);
        }
        return m;
    }

    private static void put(Map<String, Object> m, String k, Long v) {
        if (v != null) {
            m.put(k, v);
        }
    }
}
