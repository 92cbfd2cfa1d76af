package io.modemu.migration.tcp.testbed;

/**
 * A link between a migration source and its destination on which a test injects faults into the
 * main stream (the first connection; data channels pass untouched). Offsets count the bytes of the
 * engine's stream, the same on every transport. Made by a {@link TransportFixture}: over TCP a proxy
 * ({@link FaultyProxy}), on other fabrics whatever pulls their cable.
 */
public interface FaultyLink extends AutoCloseable {
    /** Rewrites bytes of the stream on their way to the destination: {@code buf[off..off+len)} holds stream bytes from {@code streamOffset}. */
    interface Tamper {
        void apply(long streamOffset, byte[] buf, int off, int len);
    }

    /** The URI the source migrates to. */
    String uri();

    /** Cuts the link (both ways, no goodbye) once the source has sent {@code bytes} of the stream. */
    FaultyLink cutAfter(long bytes);

    /** Cuts the link now: a cable pulled, a destination host gone. */
    void cutNow();

    /**
     * Ends the stream the destination reads {@code bytes} after the configuration, in the RAM section
     * (a truncated stream); the destination's replies still reach the source.
     */
    FaultyLink truncateAfterConfiguration(long bytes);

    /** Rewrites stream bytes on their way to the destination. */
    FaultyLink tamper(Tamper t);

    @Override
    void close();
}
