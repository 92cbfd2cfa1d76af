package io.modemu.migration;

import java.io.Closeable;
import java.io.IOException;
import java.time.Duration;

/**
 * A listening endpoint for incoming migrations. The engine accepts the main stream and then, for
 * {@code multifd}, one more connection per parallel stream; it may accept again after a failed
 * migration when the destination is configured to keep waiting.
 *
 * <p>Threads: {@link #accept} is called by one thread at a time; {@link #close()} may be called from
 * any thread and makes a blocked accept fail promptly.
 */
public interface MigrationListener extends Closeable {
    /** The bound address, without scheme (with the real port if 0 was asked). */
    String address();

    /**
     * Waits up to {@code timeout} (forever if null) for a connection.
     *
     * @throws java.net.SocketTimeoutException if none arrived in time
     * @throws IOException                     if the listener failed or was closed
     */
    MigrationChannel accept(Duration timeout) throws IOException;

    /** Stops listening. Any thread; idempotent. */
    @Override
    void close() throws IOException;
}
