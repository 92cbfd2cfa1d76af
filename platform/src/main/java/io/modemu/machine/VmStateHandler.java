package io.modemu.machine;

import java.util.concurrent.CompletionStage;

/**
 * A VM change-state handler (QEMU's VMChangeStateHandler), split into its two directions.
 *
 * <p>Both methods run on the machine's main loop and must not block it: return a stage that
 * completes when the work is done (for example when in-flight I/O drained). The chain waits for
 * that stage before it calls the next handler. A stage that fails, or a method that throws, fails
 * the whole change; see {@link Machine#vmStop(RunState)} for what the machine does then.
 */
public interface VmStateHandler {
    /** The VM stops into {@code newState}; vCPUs are already paused. Runs on the main loop. */
    CompletionStage<Void> stop(RunState newState);

    /** The VM starts running; vCPUs resume after every start handler completed. Runs on the main loop. */
    CompletionStage<Void> start();
}
