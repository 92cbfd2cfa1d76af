package io.modemu.machine;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Guest-physical memory: the one API through which vCPUs and devices read and write guest RAM.
 *
 * <p>Every access is bounds-checked against the RAM blocks and fails with
 * {@link GuestMemoryException} rather than touching host memory outside guest RAM. Every write
 * through this API marks the written pages dirty; code that writes through a segment from
 * {@link #slice} (DMA straight into RAM) calls {@link #markDirty} after the write completed, so that
 * a migration pass that races the write sends the page again. Multi-byte values are little-endian,
 * as on RISC-V. Thread-safe: guest RAM is shared memory, callers order their accesses with the
 * acquire/release variants where a protocol needs it (virtqueue indices).
 */
public final class GuestMemory {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U16_ALIGNED = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private final List<RamBlock> blocks;
    private final RamBlock first;

    public GuestMemory(List<RamBlock> blocks) {
        if (blocks.isEmpty()) {
            throw new IllegalArgumentException("a machine needs at least one RAM block");
        }
        this.blocks = List.copyOf(blocks);
        this.first = blocks.getFirst();
    }

    public List<RamBlock> blocks() {
        return blocks;
    }

    /** Total RAM in bytes. */
    public long totalSize() {
        long s = 0;
        for (RamBlock b : blocks) {
            s += b.size();
        }
        return s;
    }

    /** The RAM block holding {@code [gpa, gpa + length)}. */
    public RamBlock blockFor(long gpa, long length) {
        if (first.contains(gpa, length)) {
            return first;
        }
        for (RamBlock b : blocks) {
            if (b.contains(gpa, length)) {
                return b;
            }
        }
        throw new GuestMemoryException(gpa, length);
    }

    /** Whether {@code [gpa, gpa + length)} lies inside one RAM block. */
    public boolean isRam(long gpa, long length) {
        if (first.contains(gpa, length)) {
            return true;
        }
        for (RamBlock b : blocks) {
            if (b.contains(gpa, length)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The guest RAM at {@code [gpa, gpa + length)} as a segment, for DMA with no copy: a slice of the
     * block's {@linkplain RamBlock#ioSegment() I/O view}. A writer calls {@link #markDirty} once the
     * data is in place.
     */
    public MemorySegment slice(long gpa, long length) {
        RamBlock b = blockFor(gpa, length);
        return b.ioSegment().asSlice(gpa - b.base(), length);
    }

    /** Marks {@code [gpa, gpa + length)} dirty (after a DMA write into a {@link #slice}). */
    public void markDirty(long gpa, long length) {
        RamBlock b = blockFor(gpa, length);
        b.dirty().mark(gpa - b.base(), length);
    }

    public int readU8(long gpa) {
        RamBlock b = blockFor(gpa, 1);
        return Byte.toUnsignedInt(b.segment().get(ValueLayout.JAVA_BYTE, gpa - b.base()));
    }

    public int readU16(long gpa) {
        RamBlock b = blockFor(gpa, 2);
        return Short.toUnsignedInt(b.segment().get(U16, gpa - b.base()));
    }

    /** Reads a 16-bit value with acquire semantics; {@code gpa} must be 2-byte aligned. */
    public int readU16Acquire(long gpa) {
        RamBlock b = blockFor(gpa, 2);
        return Short.toUnsignedInt((short) U16_ALIGNED.getAcquire(b.segment(), gpa - b.base()));
    }

    public long readU32(long gpa) {
        RamBlock b = blockFor(gpa, 4);
        return Integer.toUnsignedLong(b.segment().get(U32, gpa - b.base()));
    }

    public long readU64(long gpa) {
        RamBlock b = blockFor(gpa, 8);
        return b.segment().get(U64, gpa - b.base());
    }

    public void writeU8(long gpa, int value) {
        RamBlock b = blockFor(gpa, 1);
        b.segment().set(ValueLayout.JAVA_BYTE, gpa - b.base(), (byte) value);
        b.dirty().markPage((gpa - b.base()) >>> DirtyBitmap.PAGE_SHIFT);
    }

    public void writeU16(long gpa, int value) {
        RamBlock b = blockFor(gpa, 2);
        b.segment().set(U16, gpa - b.base(), (short) value);
        b.dirty().mark(gpa - b.base(), 2);
    }

    /** Writes a 16-bit value with release semantics; {@code gpa} must be 2-byte aligned. */
    public void writeU16Release(long gpa, int value) {
        RamBlock b = blockFor(gpa, 2);
        U16_ALIGNED.setRelease(b.segment(), gpa - b.base(), (short) value);
        b.dirty().mark(gpa - b.base(), 2);
    }

    public void writeU32(long gpa, long value) {
        RamBlock b = blockFor(gpa, 4);
        b.segment().set(U32, gpa - b.base(), (int) value);
        b.dirty().mark(gpa - b.base(), 4);
    }

    public void writeU64(long gpa, long value) {
        RamBlock b = blockFor(gpa, 8);
        b.segment().set(U64, gpa - b.base(), value);
        b.dirty().mark(gpa - b.base(), 8);
    }

    /** Copies {@code src} into guest RAM at {@code gpa} and marks it dirty. */
    public void write(long gpa, MemorySegment src) {
        RamBlock b = blockFor(gpa, src.byteSize());
        MemorySegment.copy(src, 0, b.segment(), gpa - b.base(), src.byteSize());
        b.dirty().mark(gpa - b.base(), src.byteSize());
    }

    /** Copies {@code bytes} into guest RAM at {@code gpa} and marks it dirty. */
    public void write(long gpa, byte[] bytes) {
        write(gpa, MemorySegment.ofArray(bytes));
    }

    /** Copies guest RAM at {@code gpa} into {@code dst}. */
    public void read(long gpa, MemorySegment dst) {
        RamBlock b = blockFor(gpa, dst.byteSize());
        MemorySegment.copy(b.segment(), gpa - b.base(), dst, 0, dst.byteSize());
    }

    public byte[] read(long gpa, int length) {
        byte[] out = new byte[length];
        read(gpa, MemorySegment.ofArray(out));
        return out;
    }

    /** A full memory fence (virtio's mb()). */
    public static void fullFence() {
        VarHandle.fullFence();
    }
}
