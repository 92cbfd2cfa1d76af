package io.modemu.bench;

import io.modemu.aio.LoopDriver;
import io.modemu.aio.LoopExecutor;
import io.modemu.aio.TimerHandle;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import java.util.concurrent.CompletableFuture;

/**
 * Runs every context of a machine round robin on the thread that calls {@link #await} or
 * {@link #runFor}, with the real clock. A benchmark of one machine on one core: what it measures is
 * the whole CPU cost of a request (guest, device, backend), with no hand-off between cores and no
 * other process in between. Not thread-safe: one thread posts and runs.
 */
final class SingleThreadLoopDriver implements LoopDriver {
    private final List<Loop> loops = new ArrayList<>();
    private final PriorityQueue<Timer> timers = new PriorityQueue<>();
    private long timerSeq;
    private Loop current;

    @Override
    public LoopExecutor create(String name) {
        Loop l = new Loop(name);
        loops.add(l);
        return l;
    }

    @Override
    public <T> T await(CompletableFuture<T> future) {
        while (!future.isDone()) {
            if (!runOnce()) {
                throw new IllegalStateException("idle with the future not done");
            }
        }
        return future.join();
    }

    /** Runs the loops for {@code nanos} of real time. */
    void runFor(long nanos) {
        long end = System.nanoTime() + nanos;
        while (System.nanoTime() - end < 0) {
            for (int i = 0; i < 1000; i++) {
                runOnce();
            }
        }
    }

    /** One task of every loop that has one, and due timers; false if there was nothing at all. */
    private boolean runOnce() {
        boolean ran = false;
        long now = System.nanoTime();
        while (!timers.isEmpty() && (timers.peek().cancelled || timers.peek().deadline - now <= 0)) {
            Timer t = timers.poll();
            if (!t.cancelled && !t.loop.stopped) {
                t.loop.queue.add(t.task);
            }
        }
        for (int i = 0; i < loops.size(); i++) {
            Loop l = loops.get(i);
            Runnable task = l.stopped ? null : l.queue.poll();
            if (task != null) {
                current = l;
                try {
                    task.run();
                } finally {
                    current = null;
                }
                ran = true;
            }
        }
        return ran || !timers.isEmpty();
    }

    private final class Timer implements TimerHandle, Comparable<Timer> {
        final long deadline;
        final long seq;
        final Loop loop;
        final Runnable task;
        boolean cancelled;

        Timer(long deadline, Loop loop, Runnable task) {
            this.deadline = deadline;
            this.seq = timerSeq++;
            this.loop = loop;
            this.task = task;
        }

        @Override
        public boolean cancel() {
            boolean was = cancelled;
            cancelled = true;
            return !was;
        }

        @Override
        public int compareTo(Timer o) {
            int c = Long.compare(deadline, o.deadline);
            return c != 0 ? c : Long.compare(seq, o.seq);
        }
    }

    private final class Loop implements LoopExecutor {
        final String name;
        final ArrayDeque<Runnable> queue = new ArrayDeque<>();
        boolean stopped;

        Loop(String name) {
            this.name = name;
        }

        @Override
        public void post(Runnable task) {
            if (!stopped) {
                queue.add(task);
            }
        }

        @Override
        public TimerHandle postDelayed(long delayNanos, Runnable task) {
            Timer t = new Timer(System.nanoTime() + delayNanos, this, task);
            timers.add(t);
            return t;
        }

        @Override
        public long nanoTime() {
            return System.nanoTime();
        }

        @Override
        public boolean inLoop() {
            return current == this;
        }

        @Override
        public String describeCurrent() {
            return current == null ? "the benchmark thread" : "context '" + current.name + "' (single-threaded)";
        }

        @Override
        public void shutdown() {
            stopped = true;
            queue.clear();
        }
    }
}
