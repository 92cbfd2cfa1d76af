package io.modemu.aio;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import java.util.SplittableRandom;
import java.util.function.BooleanSupplier;

/**
 * Drives every {@link AioContext} of a machine from one thread with a seeded random schedule and
 * virtual time, so that a race is replayed exactly from its seed.
 *
 * <p>Each step advances the virtual clock by a random task cost, moves due timers to their loops,
 * then runs one task of a loop chosen at random among those with work. Contexts stay logically
 * separate threads: {@link AioContext#assertInThread()} checks the loop being run. Only the thread
 * that calls the {@code run} methods runs tasks; other threads may post (the queue is locked).
 */
public final class DeterministicScheduler implements LoopDriver {
    private final long seed;
    private final SplittableRandom random;
    private final long maxTaskCostNanos;
    private final List<SimLoop> loops = new ArrayList<>();
    private final PriorityQueue<TimerEntry<SimLoop>> timers = new PriorityQueue<>();
    private long now;
    private long timerSeq;
    private long steps;
    private SimLoop current;

    public DeterministicScheduler(long seed) {
        this(seed, 2_000);
    }

    /** @param maxTaskCostNanos each task advances virtual time by a random amount up to this */
    public DeterministicScheduler(long seed, long maxTaskCostNanos) {
        this.seed = seed;
        this.random = new SplittableRandom(seed);
        this.maxTaskCostNanos = maxTaskCostNanos;
    }

    public long seed() {
        return seed;
    }

    /** Virtual time in nanoseconds. */
    public synchronized long now() {
        return now;
    }

    /** Number of tasks run so far. */
    public long steps() {
        return steps;
    }

    @Override
    public synchronized LoopExecutor create(String name) {
        SimLoop l = new SimLoop(name);
        loops.add(l);
        return l;
    }

    /**
     * Runs tasks until {@code condition} holds (checked before each step), the system is idle, or
     * {@code maxSteps} tasks ran.
     *
     * @return whether {@code condition} holds at the end
     */
    public boolean runUntil(BooleanSupplier condition, long maxSteps) {
        for (long i = 0; i < maxSteps; i++) {
            if (condition.getAsBoolean()) {
                return true;
            }
            if (!step()) {
                return condition.getAsBoolean();
            }
        }
        return condition.getAsBoolean();
    }

    /** Runs until no task and no timer is left, or {@code maxSteps} tasks ran; returns whether it went idle. */
    public boolean runUntilIdle(long maxSteps) {
        for (long i = 0; i < maxSteps; i++) {
            if (!step()) {
                return true;
            }
        }
        return false;
    }

    /**
     * Runs the loops until {@code future} is done.
     *
     * @throws IllegalStateException naming the seed if the system went idle, or ran a million steps, first
     */
    @Override
    public <T> T await(java.util.concurrent.CompletableFuture<T> future) {
        if (!runUntil(future::isDone, 1_000_000)) {
            throw new IllegalStateException("seed " + seed + ": future not done after " + steps + " steps (virtual time " + now + " ns); the system "
                    + (hasWork() ? "is still busy" : "went idle: a lost wake-up or a deadlock"));
        }
        return future.join();
    }

    /** Whether any task or live timer is left. */
    public synchronized boolean hasWork() {
        for (SimLoop l : loops) {
            if (!l.stopped && !l.queue.isEmpty()) {
                return true;
            }
        }
        return nextLiveTimer() != null;
    }

    /** Runs one task; returns false if there was nothing left to run. */
    public boolean step() {
        SimLoop chosen;
        Runnable task;
        synchronized (this) {
            if (maxTaskCostNanos > 0) {
                now += random.nextLong(maxTaskCostNanos + 1);
            }
            releaseDueTimers();
            List<SimLoop> ready = new ArrayList<>(loops.size());
            for (SimLoop l : loops) {
                if (!l.stopped && !l.queue.isEmpty()) {
                    ready.add(l);
                }
            }
            if (ready.isEmpty()) {
                TimerEntry<SimLoop> next = nextLiveTimer();
                if (next == null) {
                    return false;
                }
                now = Math.max(now, next.deadline);
                releaseDueTimers();
                for (SimLoop l : loops) {
                    if (!l.stopped && !l.queue.isEmpty()) {
                        ready.add(l);
                    }
                }
                if (ready.isEmpty()) {
                    return true;
                }
            }
            chosen = ready.get(ready.size() == 1 ? 0 : random.nextInt(ready.size()));
            task = chosen.queue.poll();
            steps++;
        }
        SimLoop previous = current;
        current = chosen;
        try {
            task.run();
        } finally {
            current = previous;
        }
        return true;
    }

    private TimerEntry<SimLoop> nextLiveTimer() {
        while (!timers.isEmpty() && (timers.peek().cancelled || timers.peek().owner.stopped)) {
            timers.poll();
        }
        return timers.peek();
    }

    private void releaseDueTimers() {
        while (!timers.isEmpty() && timers.peek().deadline <= now) {
            TimerEntry<SimLoop> t = timers.poll();
            if (!t.cancelled && !t.owner.stopped) {
                t.owner.queue.add(t.task);
            }
        }
    }

    private final class SimLoop implements LoopExecutor {
        final String name;
        final ArrayDeque<Runnable> queue = new ArrayDeque<>();
        volatile boolean stopped;

        SimLoop(String name) {
            this.name = name;
        }

        @Override
        public void post(Runnable task) {
            synchronized (DeterministicScheduler.this) {
                if (!stopped) {
                    queue.add(task);
                }
            }
        }

        @Override
        public TimerHandle postDelayed(long delayNanos, Runnable task) {
            synchronized (DeterministicScheduler.this) {
                TimerEntry<SimLoop> t = new TimerEntry<>(now + delayNanos, timerSeq++, this, task);
                timers.add(t);
                return t;
            }
        }

        @Override
        public long nanoTime() {
            return now();
        }

        @Override
        public boolean inLoop() {
            return current == this;
        }

        @Override
        public String describeCurrent() {
            return current == null ? "thread '" + Thread.currentThread().getName() + "' (outside the scheduler)"
                    : "simulated context '" + current.name + "' (seed " + seed + ")";
        }

        @Override
        public void shutdown() {
            synchronized (DeterministicScheduler.this) {
                stopped = true;
                queue.clear();
            }
        }
    }
}
