package io.modemu.migration.rdmasim.verbs;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * Memory a peer's adapter can reach: a shared mapping of a file, known to the device, so that a
 * memory region over it can be registered with remote access.
 *
 * <p>On real hardware any memory can be registered for remote access, because the adapter reaches
 * it by DMA. Here the peer's adapter is the peer process, which reaches the memory by mapping the same
 * file; so remotely accessible regions must lie in memory the device allocated
 * ({@link RdmaDevice#allocateShared}) or in a file mapping declared to it
 * ({@link RdmaDevice#attachShared}, for example guest RAM backed by a file). Local-only regions
 * can be any native memory.
 */
public final class SharedMemory implements AutoCloseable {
    private final RdmaDevice device;
    private final int index;
    private final int generation;
    private final Path file;
    private final MemorySegment segment;
    private final Arena mappingArena;
    private volatile boolean closed;

    SharedMemory(RdmaDevice device, int index, int generation, Path file, MemorySegment segment, Arena mappingArena) {
        this.device = device;
        this.index = index;
        this.generation = generation;
        this.file = file;
        this.segment = segment;
        this.mappingArena = mappingArena;
    }

    /** The file behind the mapping. */
    public Path file() {
        return file;
    }

    /** The mapping (offset 0 of the file). */
    public MemorySegment segment() {
        return segment;
    }

    int index() {
        return index;
    }

    int generation() {
        return generation;
    }

    /** The arena of a mapping the device made itself (allocated memory), or null for an attached mapping. */
    Arena mappingArena() {
        return mappingArena;
    }

    boolean isClosed() {
        return closed;
    }

    void markClosed() {
        closed = true;
    }

    boolean contains(long address, long length) {
        long base = segment.address();
        return address >= base && length >= 0 && address - base <= segment.byteSize() - length;
    }

    /**
     * Forgets the mapping. Memory the device allocated is unmapped and its file deleted.
     *
     * @throws VerbsException BUSY while a memory region over it is registered
     */
    @Override
    public void close() {
        device.releaseShared(this);
    }

    @Override
    public String toString() {
        return String.format("SharedMemory[%s, %d bytes @0x%x]", file, segment.byteSize(), segment.address());
    }
}
