package io.modemu.migration.internal;

import io.modemu.machine.Machine;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationStatus;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The status and statistics of one migration, read by any thread ({@link #info()}), written by the
 * migration's threads: counters are adders, everything else is written by the migration thread
 * alone. Status changes emit QEMU's {@code MIGRATION} event on the machine.
 */
final class MigrationProgress {
    private static final Logger log = LoggerFactory.getLogger(MigrationProgress.class);
    private static final long WINDOW_NANOS = 100_000_000L;

    private final Machine machine;
    private final long startNanos = System.nanoTime();
    private volatile MigrationStatus status = MigrationStatus.NONE;

    /** Bytes on the main channel (and written one-sided). */
    final LongAdder transferred = new LongAdder();
    /** Bytes on the parallel data channels. */
    final LongAdder multifdBytes = new LongAdder();
    final LongAdder normalPages = new LongAdder();
    final LongAdder zeroPages = new LongAdder();
    final long totalRam;

    private volatile long remainingPages;
    private volatile long syncCount;
    private volatile long setupMs = -1;
    private volatile long endNanos = -1;
    private volatile long downtimeMs = -1;
    private volatile long bytesAtStop = -1;
    private volatile double mbps;
    private volatile long pagesPerSecond;
    private volatile long dirtyPagesRate;
    private volatile double bandwidthBytesPerMs;
    private volatile long expectedDowntimeMs;
    private volatile int throttle = -1;
    private volatile String error;

    // migration thread only
    private long windowStartNanos = startNanos;
    private long windowStartBytes;
    private long windowStartPages;
    private long lastSyncNanos = startNanos;
    private long lastSyncBytes;
    private boolean windowSinceSync;

    MigrationProgress(Machine machine, long totalRam, long downtimeLimitMs) {
        this.machine = machine;
        this.totalRam = totalRam;
        this.expectedDowntimeMs = downtimeLimitMs;
    }

    /** Every byte sent so far (QEMU's {@code transferred}). */
    long sent() {
        return transferred.sum() + multifdBytes.sum();
    }

    MigrationStatus status() {
        return status;
    }

    /** Changes the status and emits {@code MIGRATION}. */
    void status(MigrationStatus s) {
        MigrationStatus old = status;
        if (old == s) {
            return;
        }
        status = s;
        if (s.isFinal()) {
            endNanos = System.nanoTime();
            long setup = setupMs;
            long ms = (endNanos - startNanos) / 1_000_000 - Math.max(0, setup);
            if (s == MigrationStatus.COMPLETED && ms > 0) {
                // as QEMU reports it at the end: everything sent over the time after setup
                mbps = sent() * 8.0 / ms / 1000;
            }
        }
        log.debug("machine '{}': migration {} -> {}", machine.name(), old, s);
        machine.emit("MIGRATION", Map.of("status", s.qapiName()));
    }

    void error(String e) {
        if (error == null) {
            error = e;
        }
    }

    String error() {
        return error;
    }

    void setupDone() {
        setupMs = (System.nanoTime() - startNanos) / 1_000_000;
        lastSyncNanos = windowStartNanos = System.nanoTime();
        lastSyncBytes = windowStartBytes = sent();
    }

    void remainingPages(long pages) {
        remainingPages = pages;
        double bw = bandwidthBytesPerMs;
        if (bw > 0) {
            expectedDowntimeMs = (long) (pages * (double) Wire.PAGE / bw);
        }
    }

    long remainingBytes() {
        return remainingPages * Wire.PAGE;
    }

    void throttle(int percent) {
        throttle = percent;
    }

    /** Updates the per-period rates once a period of 100 ms is over. Migration thread. */
    void tick() {
        long now = System.nanoTime();
        long dt = now - windowStartNanos;
        if (dt < WINDOW_NANOS) {
            return;
        }
        long bytes = sent();
        long pages = normalPages.sum() + zeroPages.sum();
        rates(bytes - windowStartBytes, pages - windowStartPages, dt);
        windowStartNanos = now;
        windowStartBytes = bytes;
        windowStartPages = pages;
        windowSinceSync = true;
    }

    private void rates(long bytes, long pages, long nanos) {
        double ms = nanos / 1e6;
        mbps = bytes * 8.0 / (ms / 1e3) / 1e6;
        pagesPerSecond = (long) (pages * 1e3 / ms);
        if (bytes > 10_000) {
            bandwidthBytesPerMs = bytes / ms;
        }
    }

    /**
     * A dirty-bitmap synchronisation found {@code newlyDirty} pages: counts the pass, measures the
     * dirty rate and, if no full period passed since the last one, the bandwidth over the pass.
     * Migration thread.
     *
     * @return the number of synchronisations so far
     */
    long synced(long newlyDirty) {
        long now = System.nanoTime();
        long dt = Math.max(1, now - lastSyncNanos);
        long bytes = sent();
        if (!windowSinceSync && bytes - lastSyncBytes > 10_000) {
            bandwidthBytesPerMs = (bytes - lastSyncBytes) / (dt / 1e6);
        }
        dirtyPagesRate = (long) (newlyDirty * 1e9 / dt);
        lastSyncNanos = now;
        lastSyncBytes = bytes;
        windowSinceSync = false;
        return ++syncCount;
    }

    /** Bytes per millisecond measured last; 0 before anything was measured. */
    double bandwidthBytesPerMs() {
        return bandwidthBytesPerMs;
    }

    long syncCount() {
        return syncCount;
    }

    void stopped() {
        bytesAtStop = sent();
    }

    void downtime(long ms) {
        downtimeMs = ms;
    }

    long elapsedMs() {
        return (System.nanoTime() - startNanos) / 1_000_000;
    }

    MigrationInfo info() {
        MigrationStatus s = status;
        if (s == MigrationStatus.NONE) {
            return MigrationInfo.none();
        }
        long end = endNanos;
        long total = ((end > 0 ? end : System.nanoTime()) - startNanos) / 1_000_000;
        if (s == MigrationStatus.SETUP) {
            return new MigrationInfo(s, null, null, null, null, null, null, null);
        }
        if (s == MigrationStatus.FAILED || s == MigrationStatus.CANCELLED) {
            return new MigrationInfo(s, null, null, null, null, null, null, error);
        }
        long bytes = sent();
        long atStop = bytesAtStop;
        long normal = normalPages.sum();
        MigrationInfo.Ram ram = new MigrationInfo.Ram(bytes, s == MigrationStatus.COMPLETED ? 0 : remainingPages * Wire.PAGE, totalRam, zeroPages.sum(),
                normal, normal * Wire.PAGE, mbps, syncCount, pagesPerSecond, s == MigrationStatus.COMPLETED ? 0 : dirtyPagesRate, multifdBytes.sum(),
                atStop < 0 ? bytes : atStop, atStop < 0 ? 0 : bytes - atStop);
        long setup = setupMs;
        int t = throttle;
        if (s == MigrationStatus.COMPLETED) {
            long down = downtimeMs;
            return new MigrationInfo(s, total, setup < 0 ? null : setup, down < 0 ? null : down, null, ram, null, null);
        }
        return new MigrationInfo(s, total, setup < 0 ? null : setup, null, expectedDowntimeMs, ram, t < 0 ? null : t, null);
    }
}
