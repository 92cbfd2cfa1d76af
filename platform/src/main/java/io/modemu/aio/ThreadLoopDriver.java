package io.modemu.aio;

import java.util.PriorityQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Gives every {@link AioContext} its own platform thread, named {@code modemu-<name>}.
 *
 * <p>Posting is lock-free (a multi-producer queue plus park/unpark); timers live in a heap that
 * only the loop thread touches. A loop spins briefly before it parks, which keeps the hand-off
 * between a vCPU and an IOThread cheap at high request rates.
 *
 * <p>While it spins, a loop yields its processor every {@code yieldEvery} empty polls: on a host
 * with a spare processor the yield returns at once, but when the machine's threads have fewer
 * processors than they need (a shared host, or more loops than cores) a spinning loop would
 * otherwise keep a busy one of the same machine (an IOThread waiting for the vCPU spinning on
 * its processor, or the reverse) off the processor until the end of its time slice.
 */
public final class ThreadLoopDriver implements LoopDriver {
    private final int spinIterations;
    private final int yieldEvery;

    public ThreadLoopDriver() {
        this(Integer.getInteger("modemu.loop.spin", 2_000), defaultYieldEvery());
    }

    /** @param spinIterations how many empty polls a loop makes before it parks */
    public ThreadLoopDriver(int spinIterations) {
        this(spinIterations, defaultYieldEvery());
    }

    /**
     * @param spinIterations how many empty polls a loop makes before it parks
     * @param yieldEvery     while spinning, yield the processor after this many empty polls (0: never)
     */
    public ThreadLoopDriver(int spinIterations, int yieldEvery) {
        this.spinIterations = spinIterations;
        this.yieldEvery = Math.max(0, yieldEvery);
    }

    /** {@code -Dmodemu.loop.yield}, read when a driver is made (a benchmark's A/B run sets it in between). */
    private static int defaultYieldEvery() {
        return Integer.getInteger("modemu.loop.yield", 64);
    }

    @Override
    public LoopExecutor create(String name) {
        return new ThreadLoop(name, spinIterations, yieldEvery);
    }

    private static final class ThreadLoop implements LoopExecutor, Runnable {
        private final ConcurrentLinkedQueue<Runnable> queue = new ConcurrentLinkedQueue<>();
        private final PriorityQueue<TimerEntry<Void>> timers = new PriorityQueue<>();
        private final AtomicLong timerSeq = new AtomicLong();
        private final Thread thread;
        private final int spin;
        private final int yieldEvery;
        private volatile boolean sleeping;
        private volatile long tid = -1;
        private volatile boolean stopped;

        ThreadLoop(String name, int spin, int yieldEvery) {
            this.spin = spin;
            this.yieldEvery = yieldEvery;
            this.thread = Thread.ofPlatform().name("modemu-" + name).daemon(true).unstarted(this);
            thread.start();
        }

        @Override
        public void post(Runnable task) {
            if (stopped) {
                return;
            }
            queue.offer(task);
            if (sleeping) {
                LockSupport.unpark(thread);
            }
        }

        @Override
        public TimerHandle postDelayed(long delayNanos, Runnable task) {
            TimerEntry<Void> t = new TimerEntry<>(System.nanoTime() + delayNanos, timerSeq.getAndIncrement(), null, task);
            if (inLoop()) {
                timers.add(t);
            } else {
                post(() -> timers.add(t));
            }
            return t;
        }

        @Override
        public long nanoTime() {
            return System.nanoTime();
        }

        @Override
        public boolean inLoop() {
            return Thread.currentThread() == thread;
        }

        @Override
        public String describeCurrent() {
            return "thread '" + Thread.currentThread().getName() + "'";
        }

        @Override
        public void shutdown() {
            stopped = true;
            LockSupport.unpark(thread);
        }

        @Override
        public long nativeThreadId() {
            return tid;
        }

        @Override
        public void run() {
            try {
                // "/proc/thread-self" links to "<pid>/task/<tid>" on Linux
                String link = java.nio.file.Files.readSymbolicLink(java.nio.file.Path.of("/proc/thread-self")).toString();
                tid = Long.parseLong(link.substring(link.lastIndexOf('/') + 1));
            } catch (java.io.IOException | RuntimeException e) {
                tid = -1;
            }
            int idle = 0;
            while (!stopped) {
                Runnable task = queue.poll();
                if (task != null) {
                    idle = 0;
                    task.run();
                    continue;
                }
                long next = runDueTimers();
                if (next == 0) {
                    continue;
                }
                if (idle < spin) {
                    idle++;
                    if (yieldEvery > 0 && idle % yieldEvery == 0) {
                        // let a thread waiting for this processor run (see the class comment)
                        Thread.yield();
                    } else {
                        Thread.onSpinWait();
                    }
                    continue;
                }
                sleeping = true;
                if (queue.isEmpty() && !stopped) {
                    if (next < 0) {
                        LockSupport.park(this);
                    } else {
                        LockSupport.parkNanos(this, next);
                    }
                }
                sleeping = false;
                idle = 0;
            }
            queue.clear();
        }

        /** Runs due timers; returns 0 if any ran, else nanos to the next one, or -1 if none. */
        private long runDueTimers() {
            boolean ran = false;
            while (!timers.isEmpty()) {
                TimerEntry<Void> t = timers.peek();
                if (t.cancelled) {
                    timers.poll();
                    continue;
                }
                long now = System.nanoTime();
                if (t.deadline - now > 0) {
                    return ran ? 0 : t.deadline - now;
                }
                timers.poll();
                t.task.run();
                ran = true;
            }
            return ran ? 0 : -1;
        }
    }
}
