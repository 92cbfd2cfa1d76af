package io.modemu.migration;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Optional;

/**
 * One established migration connection: a reliable, ordered byte stream in each direction.
 *
 * <p>Threads: at most one thread writes and at most one thread reads at a time (they may be two
 * different threads); {@link #close()} may be called from any thread at any time and makes a
 * blocked {@link #read} or {@link #write} fail promptly.
 *
 * <p>Buffers: the engine passes slices of guest RAM as direct buffers
 * ({@code MemorySegment.asByteBuffer()}); a transport should hand them to the operating system
 * without copying them first.
 *
 * <p>Roles: a channel may implement optional role interfaces, found with {@link #role(Class)}:
 * {@link RemoteRamWriter} on an outgoing channel and {@link RemoteRamTarget} on an incoming one for
 * transports that write guest RAM one-sided.
 */
public interface MigrationChannel extends Closeable {
    /** The peer, for messages (for example {@code 127.0.0.1:4444}). */
    String peer();

    /**
     * Writes every remaining byte of {@code srcs}, in order. Blocks until done.
     *
     * @throws java.net.SocketTimeoutException if the peer took no byte for the io timeout of
     *                                         {@link ChannelSettings}; the message says so and names the peer
     * @throws IOException                     if the connection failed or the channel was closed
     */
    void write(ByteBuffer... srcs) throws IOException;

    /**
     * Reads at least one byte into {@code dst} (which has room), blocking up to {@code timeout}.
     *
     * @param timeout how long to wait for the first byte; {@code null} waits without limit
     * @return the number of bytes read, or -1 at the end of the stream
     * @throws java.net.SocketTimeoutException if nothing arrived in time (naming the peer)
     * @throws IOException                     if the connection failed or the channel was closed
     */
    int read(ByteBuffer dst, Duration timeout) throws IOException;

    /** Closes both directions. Any thread; idempotent; never throws for a channel already closed. */
    @Override
    void close() throws IOException;

    /**
     * This channel in an optional role, for example {@code role(RemoteRamWriter.class)}. The default
     * returns the channel itself if it implements the role.
     */
    default <T> Optional<T> role(Class<T> role) {
        return role.isInstance(this) ? Optional.of(role.cast(this)) : Optional.empty();
    }
}
