package io.modemu.virtio.blk;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;

/**
 * The byte encoding of a fuzzed guest: a device configuration, then a sequence of operations a guest
 * driver (or a hostile guest) performs. {@link VirtioBlkFuzzing} interprets it; this class writes it
 * (for seeds and the jqwik generators) and reads it (a cursor that yields zeros past the end, so every
 * byte string is a program).
 */
final class GuestProgram {
    /** Operation codes (the opcode byte modulo {@link #OPS}). */
    static final int MMIO_WRITE = 0;
    static final int MMIO_READ = 1;
    static final int DESCRIPTOR = 2;
    static final int AVAIL_WORD = 3;
    static final int AVAIL_PUSH = 4;
    static final int NOTIFY = 5;
    static final int BUFFER = 6;
    static final int HEADER = 7;
    static final int BRING_UP = 8;
    static final int STOP_START = 9;
    static final int RUN = 10;
    static final int DISK_FAULT = 11;
    static final int OPS = 12;

    private GuestProgram() {
    }

    /** Reads a program: fields past the end read as zero. */
    static final class Reader {
        private final byte[] b;
        private int pos;

        Reader(byte[] b) {
            this.b = b;
        }

        boolean hasMore() {
            return pos < b.length;
        }

        int u8() {
            return pos < b.length ? b[pos++] & 0xff : 0;
        }

        int u16() {
            return u8() | u8() << 8;
        }

        long u32() {
            return Integer.toUnsignedLong(u16() | u16() << 16);
        }

        long u64() {
            return u32() | u32() << 32;
        }

        byte[] bytes(int n) {
            byte[] out = new byte[Math.max(0, Math.min(n, b.length - pos))];
            System.arraycopy(b, pos, out, 0, out.length);
            pos += out.length;
            return out;
        }
    }

    /** Writes a program, in the order the interpreter reads it. */
    static final class Writer {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Writer u8(int v) {
            out.write(v);
            return this;
        }

        Writer u16(int v) {
            return u8(v).u8(v >>> 8);
        }

        Writer u32(long v) {
            return u16((int) v).u16((int) (v >>> 16));
        }

        Writer u64(long v) {
            return u32(v).u32(v >>> 32);
        }

        Writer bytes(byte[] v) {
            out.writeBytes(v);
            return this;
        }

        /** The device configuration: see {@link VirtioBlkFuzzing.Config#read}. */
        Writer config(int queueSizeIndex, int numQueues, boolean iothread, int werror, int rerror, boolean bigBlocks, boolean readOnly, int latency) {
            return u8(queueSizeIndex | (numQueues - 1) << 2 | (iothread ? 8 : 0) | (bigBlocks ? 16 : 0) | (readOnly ? 32 : 0))
                    .u8(werror | rerror << 2 | latency << 4);
        }

        Writer bringUp(long features, int queueSize, long desc, long avail, long used) {
            return u8(BRING_UP).u64(features).u16(queueSize).u64(desc).u64(avail).u64(used);
        }

        Writer descriptor(int slot, long addr, long len, int flags, int next) {
            return u8(DESCRIPTOR).u16(slot).u64(addr).u32(len).u16(flags).u16(next);
        }

        Writer header(long bOffset, int type, long sector, long segSector, long segCount, long segFlags) {
            return u8(HEADER).u32(bOffset).u32(type).u64(sector).u64(segSector).u32(segCount).u32(segFlags);
        }

        Writer push(int queue, int head) {
            return u8(AVAIL_PUSH).u8(queue).u16(head);
        }

        Writer notifyQueue(int queue) {
            return u8(NOTIFY).u8(queue);
        }

        Writer run(int tens) {
            return u8(RUN).u8(tens);
        }

        Writer mmioWrite(int register, int size, long value) {
            return u8(MMIO_WRITE).u16(register).u8(size).u64(value);
        }

        Writer stopStart() {
            return u8(STOP_START);
        }

        byte[] toBytes() {
            return out.toByteArray();
        }
    }

    static ByteBuffer le(byte[] b) {
        return ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    }
}
