package io.modemu.aio;

/**
 * Supplies the executors behind a machine's {@link AioContext}s.
 *
 * <p>{@link ThreadLoopDriver} gives every context its own thread (production). A
 * {@link DeterministicScheduler} drives every context of a machine from one seeded scheduler with
 * virtual time (tests), so a race is replayed from its seed.
 */
public interface LoopDriver {
    /** Creates the executor of a new context named {@code name} (for example {@code main}, {@code io0}, {@code vcpu0}). */
    LoopExecutor create(String name);

    /**
     * Waits for {@code future} from outside every loop of this driver (a test, a CLI thread). With
     * real threads this blocks; a deterministic scheduler runs its loops until the future is done.
     *
     * @throws java.util.concurrent.CompletionException if the future failed
     */
    default <T> T await(java.util.concurrent.CompletableFuture<T> future) {
        return future.join();
    }
}
