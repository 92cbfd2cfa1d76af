package io.modemu.virtio.blk;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Counts a device's requests from the moment they are popped until their used element is visible
 * to the driver (or they are parked or dropped), and tells waiters when the count reaches zero.
 *
 * <p>Thread-safe; {@link #acquire()} and {@link #release(int)} are lock-free (hot path), waiters
 * take a lock.
 */
final class InFlight {
    private final AtomicInteger count = new AtomicInteger();
    private final List<CompletableFuture<Void>> waiters = new ArrayList<>();

    void acquire() {
        count.incrementAndGet();
    }

    /** Counts {@code n} requests at once (a queue reserves a batch's worth, then gives back what it did not take). */
    void acquire(int n) {
        if (n > 0) {
            count.addAndGet(n);
        }
    }

    void release(int n) {
        if (n > 0 && count.addAndGet(-n) == 0) {
            wake();
        }
    }

    int get() {
        return count.get();
    }

    /** Completes (on the thread that releases the last request, or at once) when nothing is in flight. */
    CompletableFuture<Void> whenIdle() {
        CompletableFuture<Void> f = new CompletableFuture<>();
        synchronized (this) {
            waiters.add(f);
        }
        if (count.get() == 0) {
            wake();
        }
        return f;
    }

    private void wake() {
        List<CompletableFuture<Void>> ready;
        synchronized (this) {
            if (waiters.isEmpty() || count.get() != 0) {
                return;
            }
            ready = new ArrayList<>(waiters);
            waiters.clear();
        }
        for (CompletableFuture<Void> f : ready) {
            f.complete(null);
        }
    }
}
