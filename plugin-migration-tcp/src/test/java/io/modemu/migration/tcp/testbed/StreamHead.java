package io.modemu.migration.tcp.testbed;

/**
 * Where the configuration of a migration stream ends, learnt from the stream's first bytes as they
 * pass: the layout is the one documented in the platform's {@code io.modemu.migration.internal.Wire}
 * (a 32-byte stream header, then the CONFIG record: a 16-byte header whose bytes 4..7 hold the
 * payload length, big-endian, then the payload). What follows is the RAM section. Fault injectors
 * use it to hit the RAM section whatever the configuration's size. Not thread-safe: one per stream,
 * fed in order.
 */
public final class StreamHead {
    /** Stream header and CONFIG record header. */
    public static final int CONFIGURATION_PAYLOAD = 32 + 16;
    private static final int LENGTH_AT = 32 + 4;
    private long length;
    private int seen;

    /** Feeds stream bytes {@code buf[off..off+len)}, which sit at {@code streamOffset} of the stream. */
    public void feed(long streamOffset, byte[] buf, int off, int len) {
        for (long at = Math.max(streamOffset, LENGTH_AT + seen); at < LENGTH_AT + 4 && at < streamOffset + len; at++) {
            length = length << 8 | (buf[off + (int) (at - streamOffset)] & 0xff);
            seen++;
        }
    }

    /** The stream offset of the first record after the configuration, or -1 while the stream has not shown it yet. */
    public long configurationEnd() {
        return seen == 4 ? CONFIGURATION_PAYLOAD + length : -1;
    }
}
