package io.modemu.aio;

import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A single-threaded event loop, as QEMU's AioContext: the machine's main loop or a named IOThread.
 *
 * <p>Everything submitted runs on the loop, one task at a time: bottom halves ({@link #execute}),
 * timers ({@link #schedule}), event notifiers ({@link #newEventNotifier}, the ioeventfd equivalent)
 * and futures ({@link #submit}). All methods are thread-safe except where stated. A task that
 * throws is logged and counted ({@link #uncaughtErrors()}) and never stops the loop.
 *
 * <p>Rule: nothing that runs on a loop may wait synchronously for another loop; continue with
 * {@link CompletionStage}s instead.
 */
public final class AioContext implements Executor, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(AioContext.class);

    private final String name;
    private final LoopExecutor loop;
    private final AtomicLong uncaught = new AtomicLong();
    private volatile Throwable firstUncaught;

    public AioContext(String name, LoopDriver driver) {
        this.name = name;
        this.loop = driver.create(name);
    }

    /** The context's name: {@code main} for the main loop, the IOThread's id otherwise. */
    public String name() {
        return name;
    }

    /** Schedules a bottom half: {@code task} runs on this loop soon. Any thread. */
    @Override
    public void execute(Runnable task) {
        loop.post(() -> runGuarded(task));
    }

    /** Runs {@code task} now if the caller is on this loop, otherwise schedules it. */
    public void runOrExecute(Runnable task) {
        if (loop.inLoop()) {
            runGuarded(task);
        } else {
            execute(task);
        }
    }

    /** Runs {@code task} on this loop and completes the future with its result. Any thread. */
    public <T> CompletableFuture<T> submit(Callable<T> task) {
        CompletableFuture<T> f = new CompletableFuture<>();
        loop.post(() -> {
            try {
                f.complete(task.call());
            } catch (Throwable t) {
                f.completeExceptionally(t);
            }
        });
        return f;
    }

    /** Runs {@code task} on this loop and completes the future when the stage it returns completes. Any thread. */
    public <T> CompletableFuture<T> submitAsync(Supplier<? extends CompletionStage<T>> task) {
        CompletableFuture<T> f = new CompletableFuture<>();
        loop.post(() -> {
            try {
                task.get().whenComplete((v, e) -> {
                    if (e != null) {
                        f.completeExceptionally(e);
                    } else {
                        f.complete(v);
                    }
                });
            } catch (Throwable t) {
                f.completeExceptionally(t);
            }
        });
        return f;
    }

    /** Runs {@code task} on this loop after {@code delayNanos}. Any thread. */
    public TimerHandle schedule(long delayNanos, Runnable task) {
        return loop.postDelayed(Math.max(0, delayNanos), () -> runGuarded(task));
    }

    /**
     * Creates an event notifier whose {@code handler} runs on this loop after {@link EventNotifier#signal()}.
     * Signals coalesce: several signals before the handler runs give one run.
     */
    public EventNotifier newEventNotifier(String notifierName, Runnable handler) {
        return new EventNotifier(this, notifierName, handler);
    }

    /** The host thread id of this loop, or -1 (simulated loops). */
    public long nativeThreadId() {
        return loop.nativeThreadId();
    }

    /** This loop's clock (virtual under a deterministic scheduler). */
    public long nanoTime() {
        return loop.nanoTime();
    }

    /** Whether the caller runs on this loop. */
    public boolean inThread() {
        return loop.inLoop();
    }

    /**
     * Fails fast when the caller is not on this loop: the check behind "runs on the main loop" and
     * "called from the IOThread" in the javadoc.
     *
     * @throws WrongThreadException naming this context and the caller
     */
    public void assertInThread() {
        if (!loop.inLoop()) {
            throw new WrongThreadException("must run in AioContext '" + name + "', called from " + loop.describeCurrent());
        }
    }

    /** Number of tasks that threw on this loop since it started (each was logged). */
    public long uncaughtErrors() {
        return uncaught.get();
    }

    /** The first error a task threw on this loop, or {@code null}. */
    public Throwable firstUncaughtError() {
        return firstUncaught;
    }

    void runGuarded(Runnable task) {
        try {
            task.run();
        } catch (Throwable t) {
            if (uncaught.getAndIncrement() == 0) {
                firstUncaught = t;
            }
            log.error("uncaught error in AioContext '{}'", name, t);
        }
    }

    /** Stops the loop. Tasks still queued are dropped. */
    @Override
    public void close() {
        loop.shutdown();
    }

    @Override
    public String toString() {
        return "AioContext[" + name + "]";
    }
}
