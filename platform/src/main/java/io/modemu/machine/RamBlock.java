package io.modemu.machine;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A named block of guest RAM mapped at a guest-physical base address: off-heap memory, optionally
 * a shared mapping of a file (so that a migration transport can map the same pages), with its
 * dirty bitmap.
 */
public final class RamBlock {
    private final String name;
    private final long base;
    private final MemorySegment segment;
    private final DirtyBitmap dirty;
    private final Path backingFile;
    private final boolean initiallyZero;

    /** A block whose memory starts zeroed unless it is backed by a file. */
    public RamBlock(String name, long base, MemorySegment segment, Path backingFile) {
        this(name, base, segment, backingFile, backingFile == null);
    }

    /**
     * @param initiallyZero whether every byte of {@code segment} was zero when the block was created
     *                      (anonymous memory, or a file the machine created); a migration then knows
     *                      that a page nobody marked dirty since is still zero, without reading it
     */
    public RamBlock(String name, long base, MemorySegment segment, Path backingFile, boolean initiallyZero) {
        this.name = name;
        this.base = base;
        this.segment = segment;
        this.dirty = new DirtyBitmap(segment.byteSize());
        this.backingFile = backingFile;
        this.initiallyZero = initiallyZero;
    }

    /**
     * Whether the block's memory was all zero when it was created. With {@link DirtyBitmap#everHarvested()}
     * false, a page whose dirty bit is clear is then still zero: every writer marks what it writes.
     */
    public boolean initiallyZero() {
        return initiallyZero;
    }

    /** The block's name, the same on both ends of a migration (QEMU's RAMBlock idstr). */
    public String name() {
        return name;
    }

    /** Guest-physical address of the block's first byte. */
    public long base() {
        return base;
    }

    public long size() {
        return segment.byteSize();
    }

    /** The whole block. Writers must mark what they write in {@link #dirty()}. */
    public MemorySegment segment() {
        return segment;
    }

    public DirtyBitmap dirty() {
        return dirty;
    }

    /** The file that backs this block with a shared mapping, if any. */
    public Optional<Path> backingFile() {
        return Optional.ofNullable(backingFile);
    }

    public boolean contains(long gpa, long length) {
        long off = gpa - base;
        return off >= 0 && length >= 0 && off <= segment.byteSize() - length;
    }

    @Override
    public String toString() {
        return String.format("RamBlock[%s @0x%x, %d bytes]", name, base, segment.byteSize());
    }
}
