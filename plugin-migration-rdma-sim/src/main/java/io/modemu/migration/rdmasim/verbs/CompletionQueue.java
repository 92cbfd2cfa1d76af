package io.modemu.migration.rdmasim.verbs;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A completion queue ({@code ibv_cq}). Completions come out in the order the adapter produced them;
 * with a simulated latency a completion becomes visible only when its acknowledgement would have
 * arrived. A queue that overflows is broken, as on hardware: its queue pairs go to ERROR and polling
 * it fails.
 *
 * <p>Thread-safe; any thread may poll or wait.
 */
public final class CompletionQueue implements AutoCloseable {
    private final RdmaDevice device;
    private final int id;
    private final int capacity;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final ArrayDeque<Entry> entries = new ArrayDeque<>();
    private String overrun;
    private int users;
    private boolean closed;

    private record Entry(WorkCompletion wc, long visibleAt) {
    }

    CompletionQueue(RdmaDevice device, int id, int capacity) {
        this.device = device;
        this.id = id;
        this.capacity = capacity;
    }

    public int capacity() {
        return capacity;
    }

    /**
     * {@code ibv_poll_cq}: takes up to {@code max} completions that are visible now, oldest first.
     * Never blocks.
     *
     * @throws VerbsException CQ_OVERRUN once the queue overflowed
     */
    public List<WorkCompletion> poll(int max) {
        List<WorkCompletion> out = new ArrayList<>(Math.min(max, 16));
        lock.lock();
        try {
            checkUsable();
            long now = System.nanoTime();
            while (out.size() < max && !entries.isEmpty() && now - entries.peekFirst().visibleAt >= 0) {
                out.add(entries.pollFirst().wc);
            }
        } finally {
            lock.unlock();
        }
        return out;
    }

    /** One visible completion, or null. */
    public WorkCompletion poll() {
        List<WorkCompletion> l = poll(1);
        return l.isEmpty() ? null : l.getFirst();
    }

    /**
     * Waits until a completion can be polled ({@code ibv_req_notify_cq} then
     * {@code ibv_get_cq_event}), at most {@code timeout}.
     *
     * @return false when the time ran out
     * @throws VerbsException CQ_OVERRUN once the queue overflowed, CLOSED when it is destroyed
     */
    public boolean await(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        lock.lock();
        try {
            while (true) {
                checkUsable();
                long now = System.nanoTime();
                long wait = deadline - now;
                if (!entries.isEmpty()) {
                    long until = entries.peekFirst().visibleAt - now;
                    if (until <= 0) {
                        return true;
                    }
                    wait = Math.min(wait, until);
                }
                if (deadline - now <= 0) {
                    return false;
                }
                changed.awaitNanos(wait);
            }
        } finally {
            lock.unlock();
        }
    }

    /** Waits at most {@code timeout} for a completion and takes it; null when the time ran out. */
    public WorkCompletion take(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            WorkCompletion wc = poll();
            if (wc != null) {
                return wc;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0 || !await(Duration.ofNanos(left))) {
                return null;
            }
        }
    }

    private void checkUsable() {
        if (overrun != null) {
            throw new VerbsException(VerbsException.Reason.CQ_OVERRUN, overrun);
        }
        if (closed) {
            throw new VerbsException(VerbsException.Reason.CLOSED, "completion queue " + id + " is destroyed");
        }
    }

    /** Adds a completion that becomes visible at {@code visibleAt} (System.nanoTime); false when the queue overflowed. */
    boolean add(WorkCompletion wc, long visibleAt) {
        lock.lock();
        try {
            if (overrun != null || closed) {
                return false;
            }
            if (entries.size() >= capacity) {
                overrun = "completion queue " + id + " overflowed: its " + capacity + " entries were full when QP 0x"
                        + Integer.toHexString(wc.qpNumber()) + " completed wr_id " + wc.wrId() + "; poll it more often or make it larger";
                changed.signalAll();
                return false;
            }
            entries.addLast(new Entry(wc, visibleAt));
            changed.signalAll();
            return true;
        } finally {
            lock.unlock();
        }
    }

    boolean isForeign(RdmaDevice d) {
        return device != d;
    }

    void attach() {
        lock.lock();
        try {
            if (closed) {
                throw new VerbsException(VerbsException.Reason.CLOSED, "completion queue " + id + " is destroyed");
            }
            users++;
        } finally {
            lock.unlock();
        }
    }

    void detach() {
        lock.lock();
        try {
            users--;
        } finally {
            lock.unlock();
        }
    }

    /**
     * {@code ibv_destroy_cq}.
     *
     * @throws VerbsException BUSY while queue pairs use it
     */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            if (users > 0) {
                throw new VerbsException(VerbsException.Reason.BUSY, "completion queue " + id + " is used by " + users + " queue pairs: destroy them first");
            }
            closed = true;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        device.forget(this);
    }

    @Override
    public String toString() {
        return "CQ[" + id + ", capacity " + capacity + "]";
    }
}
