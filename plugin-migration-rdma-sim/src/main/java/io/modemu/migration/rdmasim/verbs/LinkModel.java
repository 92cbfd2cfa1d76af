package io.modemu.migration.rdmasim.verbs;

import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;

/**
 * The simulated link of one device: a serialising port of fixed bandwidth followed by a fixed one-way
 * latency. Requests from all the device's queue pairs share the port, in the order they reserve it.
 *
 * <p>A request of {@code n} bytes posted at {@code t} starts on the wire when the port is free
 * ({@code max(t, freeAt)}), occupies it for {@code n / bandwidth}, and arrives one latency after its
 * last byte left. The adapter places the data at the arrival time and reports the completion one more
 * latency later (the acknowledgement's way back). With zero latency and unlimited bandwidth every
 * request arrives when it is posted and nothing waits. Thread-safe.
 */
final class LinkModel {
    private final long latencyNanos;
    private final long bandwidth;
    private final LongSupplier clock;
    private long freeAt;

    LinkModel(long latencyNanos, long bandwidthBytesPerSecond, LongSupplier clock) {
        this.latencyNanos = latencyNanos;
        this.bandwidth = bandwidthBytesPerSecond;
        this.clock = clock;
        this.freeAt = Long.MIN_VALUE;
    }

    boolean isIdeal() {
        return latencyNanos == 0 && bandwidth == 0;
    }

    long latencyNanos() {
        return latencyNanos;
    }

    /** Reserves the port for {@code bytes} posted at {@code postedAt}; returns when they arrive at the peer. */
    synchronized long reserve(long postedAt, long bytes) {
        long start = freeAt == Long.MIN_VALUE || postedAt - freeAt > 0 ? postedAt : freeAt;
        // bytes <= 2^31, so bytes * 1e9 fits in a long
        long wire = bandwidth == 0 ? 0 : bytes * 1_000_000_000L / bandwidth;
        freeAt = start + wire;
        return freeAt + latencyNanos;
    }

    long now() {
        return clock.getAsLong();
    }

    /** Parks until {@code deadline} on the model's clock; returns early when interrupted. */
    void sleepUntil(long deadline) {
        long left;
        while ((left = deadline - clock.getAsLong()) > 0) {
            LockSupport.parkNanos(left);
            if (Thread.currentThread().isInterrupted()) {
                return;
            }
        }
    }
}
