package io.modemu.migration.internal;

import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;

/**
 * {@code max-bandwidth} as QEMU applies it: a budget of a tenth of the limit per 100 ms period;
 * a sender that spent it waits for the next period. The limit is read on every call, so a change
 * of the parameter takes effect at once; 0 means no limit. Thread-safe (parallel senders share one).
 */
final class RateLimiter {
    private static final long PERIOD_NANOS = 100_000_000L;
    private static final long NAP_NANOS = 20_000_000L;

    private final LongSupplier bytesPerSecond;
    private final Abort abort;
    private long periodStart = System.nanoTime();
    private long used;
    private volatile boolean disabled;

    RateLimiter(LongSupplier bytesPerSecond, Abort abort) {
        this.bytesPerSecond = bytesPerSecond;
        this.abort = abort;
    }

    /** No limit from now on (the switch-over, with the VM stopped, is never throttled). */
    void disable() {
        disabled = true;
    }

    /**
     * Accounts {@code bytes} about to be sent, waiting first while this period's budget is spent.
     *
     * @param onWait run between naps while waiting (the caller's keep-alive); may be null
     */
    void acquire(long bytes, Runnable onWait) {
        while (true) {
            long wake;
            synchronized (this) {
                long limit = bytesPerSecond.getAsLong();
                if (disabled || limit <= 0) {
                    return;
                }
                long now = System.nanoTime();
                long budget = Math.max(1, limit / 10);
                if (now - periodStart >= PERIOD_NANOS) {
                    // what a period overspent (one record may hold 1 MiB, more than a period's budget) is paid
                    // by the next ones; credit never piles up beyond one period
                    long periods = (now - periodStart) / PERIOD_NANOS;
                    periodStart += periods * PERIOD_NANOS;
                    used = periods > used / budget ? 0 : used - budget * periods;
                }
                if (used < budget) {
                    used += bytes;
                    return;
                }
                wake = periodStart + PERIOD_NANOS;
            }
            long left = wake - System.nanoTime();
            if (left > 0) {
                LockSupport.parkNanos(Math.min(left, NAP_NANOS));
            }
            abort.check();
            if (onWait != null) {
                onWait.run();
            }
        }
    }
}
