package io.modemu.block;

import io.modemu.aio.AioContext;
import java.lang.foreign.MemorySegment;

/**
 * An open image as a driver sees it (QEMU's BlockDriverState, one node, no graph).
 *
 * <p>Request methods are called by {@link BlockBackend} on the context it currently lives in,
 * {@code ctx}, with ranges already checked against {@link #size()} and the read-only flag. They
 * never throw: every outcome is reported through {@code done}, exactly once, from any thread (on
 * {@code ctx} itself when the driver completes inline or via a timer; the backend re-dispatches
 * completions from other threads). Buffers are guest RAM: read and write them in place.
 */
public interface BlockNode extends AutoCloseable {
    /** What the node is, for {@code query-block} (for example the file name). */
    String describe();

    /** Size in bytes. */
    long size();

    boolean isReadOnly();

    /** Whether discard does anything (a driver that ignores it still completes it). */
    default boolean supportsDiscard() {
        return true;
    }

    void read(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done);

    void write(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done);

    void flush(AioContext ctx, BlockCompletion done);

    void discard(AioContext ctx, long offset, long length, BlockCompletion done);

    void writeZeroes(AioContext ctx, long offset, long length, BlockCompletion done);

    /** Releases the node. Called on the main loop once nothing is in flight. */
    @Override
    void close();
}
