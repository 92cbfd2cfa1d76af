package io.modemu.migration.internal;

import io.modemu.migration.MigrationChannel;
import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.atomic.LongAdder;

/**
 * The reading half of one migration channel: record headers come through a small direct read-ahead
 * buffer; page data goes from the channel straight into guest RAM (only what the read-ahead already
 * holds is copied). After {@link #next()} the fields of the record header are in {@link #type},
 * {@link #flags}, {@link #a}, {@link #b}, {@link #c}. Used by one thread at a time.
 */
final class StreamInput {
    /** Small on purpose: whatever the read-ahead holds of a page run is copied once more. */
    private static final int READ_AHEAD = 64 << 10;

    private final MigrationChannel channel;
    private final LongAdder received;
    private final ByteBuffer buf = ByteBuffer.allocateDirect(READ_AHEAD);
    private final MemorySegment bufSegment = MemorySegment.ofBuffer(buf);
    private final java.util.zip.CRC32C headers = new java.util.zip.CRC32C();
    private final byte[] header = new byte[Wire.HEADER];
    private final ByteBuffer headerView = ByteBuffer.wrap(header);
    private Duration timeout;
    private volatile long lastReadNanos = System.nanoTime();

    /** CRC-32C of the record headers read before the current one (what a PASS_END or EOF must carry). */
    long headerCrcBefore;

    int type;
    int flags;
    int a;
    long b;
    long c;

    StreamInput(MigrationChannel channel, LongAdder received, Duration timeout) {
        this.channel = channel;
        this.received = received;
        this.timeout = timeout;
        buf.flip();
    }

    /** How long a read waits for the first byte; null waits without limit. */
    void timeout(Duration t) {
        this.timeout = t;
    }

    /** Nanoseconds since bytes last arrived. */
    long idleNanos() {
        return System.nanoTime() - lastReadNanos;
    }

    /** Reads the 32-byte stream header; returns it as {magic, version, kind, index, hi, lo}. */
    long[] streamHeader() throws IOException {
        need(Wire.STREAM_HEADER);
        return new long[] {buf.getLong(), Integer.toUnsignedLong(buf.getInt()), Short.toUnsignedInt(buf.getShort()),
                Short.toUnsignedInt(buf.getShort()), buf.getLong(), buf.getLong()};
    }

    /** Reads the next record header. */
    void next() throws IOException {
        need(Wire.HEADER);
        buf.get(header);
        headerCrcBefore = headers.getValue();
        headers.update(header, 0, Wire.HEADER);
        type = Byte.toUnsignedInt(headerView.get(0));
        flags = Byte.toUnsignedInt(headerView.get(1));
        a = Short.toUnsignedInt(headerView.getShort(2));
        b = Integer.toUnsignedLong(headerView.getInt(4));
        c = headerView.getLong(8);
    }

    /** Whether the record just read is exactly {@code type} with every other field zero. */
    boolean isBare(int expectedType) {
        return type == expectedType && flags == 0 && a == 0 && b == 0 && c == 0;
    }

    /** Reads {@code length} bytes of payload (the caller checked {@code length} against its limit). */
    byte[] bytes(int length) throws IOException {
        byte[] out = new byte[length];
        int off = 0;
        while (off < length) {
            if (!buf.hasRemaining()) {
                fill();
            }
            int n = Math.min(buf.remaining(), length - off);
            buf.get(out, off, n);
            off += n;
        }
        return out;
    }

    /** Reads exactly {@code dst.byteSize()} bytes into {@code dst} (guest RAM), with no copy beyond the read-ahead. */
    void into(MemorySegment dst) throws IOException {
        long size = dst.byteSize();
        long have = Math.min(buf.remaining(), size);
        if (have > 0) {
            MemorySegment.copy(bufSegment, buf.position(), dst, 0, have);
            buf.position(buf.position() + (int) have);
        }
        if (have == size) {
            return;
        }
        ByteBuffer direct = dst.asSlice(have).asByteBuffer();
        while (direct.hasRemaining()) {
            int n = channel.read(direct, timeout);
            if (n < 0) {
                throw new EOFException("the stream ended in the middle of a record");
            }
            account(n);
        }
    }

    private void need(int n) throws IOException {
        while (buf.remaining() < n) {
            fill();
        }
    }

    private void fill() throws IOException {
        buf.compact();
        try {
            int n = channel.read(buf, timeout);
            if (n < 0) {
                throw new EOFException(buf.position() == 0 ? "the stream ended" : "the stream ended in the middle of a record");
            }
            account(n);
        } finally {
            buf.flip();
        }
    }

    private void account(int n) {
        received.add(n);
        lastReadNanos = System.nanoTime();
    }
}
