package io.modemu.aio;

/**
 * The single-threaded executor behind one {@link AioContext}.
 *
 * <p>Contract: tasks posted to one executor run one at a time, in the order posted (timers in
 * deadline order, ties in the order scheduled), and every task posted before {@link #shutdown()}
 * either runs or is dropped after shutdown; {@link #post} is thread-safe and never blocks.
 */
public interface LoopExecutor {
    /** Queues {@code task} to run on this loop. Any thread. */
    void post(Runnable task);

    /** Runs {@code task} on this loop after {@code delayNanos} of this loop's clock. Any thread. */
    TimerHandle postDelayed(long delayNanos, Runnable task);

    /** This loop's clock in nanoseconds (virtual time under a deterministic scheduler). */
    long nanoTime();

    /** Whether the caller is running on this loop. */
    boolean inLoop();

    /** A short description of the current thread or logical thread, for errors. */
    String describeCurrent();

    /** The host thread id (Linux tid) of the loop's thread, or -1 where there is none (a simulated loop). */
    default long nativeThreadId() {
        return -1;
    }

    /** Stops the loop after the task running now; later posts are dropped. */
    void shutdown();
}
