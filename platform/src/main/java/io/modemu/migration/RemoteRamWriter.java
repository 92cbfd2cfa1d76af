package io.modemu.migration;

import io.modemu.machine.RamBlock;
import java.io.IOException;
import java.util.List;

/**
 * Optional role of an outgoing {@link MigrationChannel}: writes guest RAM pages one-sided into the
 * destination's guest RAM (RDMA WRITE), so that page data bypasses the byte stream.
 *
 * <p>When the main channel has this role, the engine sends non-zero pages through {@link #write}
 * instead of the stream; zero pages, pass markers, device state and control still go through the
 * stream. Parallel streams ({@code multifd}) are not used then.
 *
 * <p>Ordering contract: a {@link #write} may return before the data landed. Once {@link #flush()}
 * returned, every earlier write must be visible in the destination's RAM: the engine flushes at the
 * end of every pass, before the stream says the pass ended, so a zero page of the next pass (sent in
 * the stream) is applied after the page written one-sided before it. The other way round the engine
 * needs no help from the transport: before it writes the first page of a pass one-sided it waits
 * until the destination reported that it applied every stream record of the previous pass. Pages may
 * change under a write while the VM runs: the dirty bitmap makes the engine send them again.
 *
 * <p>Threads: every method is called by the migration thread.
 */
public interface RemoteRamWriter {
    /**
     * Prepares the writer, once, after the destination accepted the configuration.
     *
     * @param blocks the source's RAM blocks, in the order the block indices of {@link #write} refer
     *               to; the destination's blocks have the same names and sizes (checked)
     * @param token  what the destination's {@link RemoteRamTarget#expose} returned (keys, addresses)
     */
    void open(List<RamBlock> blocks, byte[] token) throws IOException;

    /**
     * Writes {@code [offset, offset + length)} of block {@code blockIndex} (page-aligned, inside the
     * block) to the same place in the destination's RAM.
     */
    void write(int blockIndex, long offset, long length) throws IOException;

    /** Waits until every earlier {@link #write} landed in the destination's RAM. */
    void flush() throws IOException;
}
