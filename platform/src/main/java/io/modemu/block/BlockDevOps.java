package io.modemu.block;

import io.modemu.aio.AioContext;

/**
 * Callbacks from a {@link BlockBackend} to the device attached to it (QEMU's BlockDevOps). All run on
 * the main loop.
 */
public interface BlockDevOps {
    /** A drained section begins: stop submitting new requests until {@link #drainedEnd()}. */
    default void drainedBegin() {
    }

    /** The drained section ended: requests may flow again. */
    default void drainedEnd() {
    }

    /**
     * Asked inside the drained section before the backend moves to {@code target}; throw to veto
     * the move (it then does not happen at all).
     */
    default void prepareAioContextChange(AioContext target) {
    }
}
