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
    private final MemorySegment ioSegment;
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
        this(name, base, segment, segment, backingFile, initiallyZero);
    }

    /**
     * @param ioSegment the same memory as {@code segment} (same address and size) in a session of its
     *                  own, for I/O: see {@link #ioSegment()}
     */
    public RamBlock(String name, long base, MemorySegment segment, MemorySegment ioSegment, Path backingFile, boolean initiallyZero) {
        if (ioSegment.address() != segment.address() || ioSegment.byteSize() != segment.byteSize()) {
            throw new IllegalArgumentException("RAM block '" + name + "': the I/O view (0x" + Long.toHexString(ioSegment.address()) + ", "
                    + ioSegment.byteSize() + " bytes) is not the block's memory (0x" + Long.toHexString(segment.address()) + ", "
                    + segment.byteSize() + " bytes)");
        }
        this.name = name;
        this.base = base;
        this.segment = segment;
        this.ioSegment = ioSegment;
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

    /**
     * The whole block again, for I/O straight into or out of guest RAM (what {@link GuestMemory#slice}
     * hands out). Around each read or write on a buffer of a shared session the JDK updates a count
     * in the session object (two atomic updates), and every access through {@link #segment()} reads
     * that object's state: were they one session, each read of a device on an IOThread would take
     * that cache line from the vCPUs running on other processors, and their next access would take it
     * back. The machine gives this view a session of its own when it can (see {@code Machine}); else
     * it is {@link #segment()} itself.
     */
    public MemorySegment ioSegment() {
        return ioSegment;
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
