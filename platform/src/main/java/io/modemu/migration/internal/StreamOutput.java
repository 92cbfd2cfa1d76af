package io.modemu.migration.internal;

import io.modemu.migration.MigrationChannel;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.LongAdder;

/**
 * The writing half of one migration channel: record headers and small payloads gather in a direct
 * staging buffer; large page runs go from guest RAM to the channel in one gathering write with the
 * staged bytes, never copied. Used by one thread at a time.
 */
final class StreamOutput {
    /** Page data up to this size is copied into the staging buffer (cheaper than a system call). */
    private static final int COPY_LIMIT = 32 << 10;
    private static final int STAGING = 256 << 10;

    private final MigrationChannel channel;
    private final LongAdder transferred;
    private final ByteBuffer buf = ByteBuffer.allocateDirect(STAGING);
    private final MemorySegment bufSegment = MemorySegment.ofBuffer(buf);
    private final ByteBuffer[] pair = new ByteBuffer[2];
    private final java.util.zip.CRC32C headers = new java.util.zip.CRC32C();
    private final ByteBuffer header = ByteBuffer.allocate(Wire.HEADER);
    private volatile long lastWriteNanos = System.nanoTime();
    private long bytes;

    StreamOutput(MigrationChannel channel, LongAdder transferred) {
        this.channel = channel;
        this.transferred = transferred;
    }

    MigrationChannel channel() {
        return channel;
    }

    /** Bytes this output handed to its channel (staged bytes count once flushed). */
    long bytes() {
        return bytes;
    }

    /** Nanoseconds since the last write reached the channel. */
    long idleNanos() {
        return System.nanoTime() - lastWriteNanos;
    }

    void streamHeader(int kind, int index, long sessionHi, long sessionLo) throws IOException {
        room(Wire.STREAM_HEADER);
        buf.putLong(Wire.MAGIC).putInt(Wire.VERSION).putShort((short) kind).putShort((short) index).putLong(sessionHi).putLong(sessionLo);
    }

    void record(int type, int flags, int a, long b, long c) throws IOException {
        room(Wire.HEADER);
        header.clear();
        header.put((byte) type).put((byte) flags).putShort((short) a).putInt((int) b).putLong(c);
        headers.update(header.array(), 0, Wire.HEADER);
        buf.put(header.array());
    }

    /** CRC-32C of every record header written so far on this channel (PASS_END and EOF carry it). */
    long headerCrc() {
        return headers.getValue();
    }

    /** A payload of any length (staged in pieces). */
    void bytes(byte[] data) throws IOException {
        int off = 0;
        while (off < data.length) {
            if (!buf.hasRemaining()) {
                flush();
            }
            int n = Math.min(buf.remaining(), data.length - off);
            buf.put(data, off, n);
            off += n;
        }
    }

    /** Page data straight from guest RAM. */
    void pages(MemorySegment src) throws IOException {
        long n = src.byteSize();
        if (n <= COPY_LIMIT) {
            room((int) n);
            MemorySegment.copy(src, 0, bufSegment, buf.position(), n);
            buf.position(buf.position() + (int) n);
            return;
        }
        buf.flip();
        int staged = buf.remaining();
        pair[0] = buf;
        pair[1] = src.asByteBuffer();
        try {
            channel.write(pair);
        } finally {
            pair[1] = null;
            buf.clear();
        }
        account(staged + n);
    }

    /** Hands every staged byte to the channel. */
    void flush() throws IOException {
        if (buf.position() == 0) {
            return;
        }
        buf.flip();
        int n = buf.remaining();
        try {
            channel.write(buf);
        } finally {
            buf.clear();
        }
        account(n);
    }

    private void room(int n) throws IOException {
        if (buf.remaining() < n) {
            flush();
        }
    }

    private void account(long n) {
        bytes += n;
        transferred.add(n);
        lastWriteNanos = System.nanoTime();
    }
}
