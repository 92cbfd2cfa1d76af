package io.modemu.migration;

import java.io.IOException;
import java.time.Duration;

/**
 * A migration transport a plugin contributes (found with {@link java.util.ServiceLoader}), picked by
 * the scheme of a migration URI: {@code tcp:HOST:PORT} goes to the transport whose
 * {@link #scheme()} is {@code tcp}. A new transport needs no platform change.
 */
public interface MigrationTransport {
    /** The URI scheme, without the colon (for example {@code tcp}). */
    String scheme();

    /** One line for {@code modemu plugins}. */
    String description();

    /**
     * Connects to a destination. Runs on the migration thread; may block up to {@code timeout}.
     *
     * @param address the URI without {@code scheme:} (for example {@code 127.0.0.1:4444})
     * @throws IOException with a message naming the address when the connection fails
     */
    MigrationChannel connect(String address, Duration timeout) throws IOException;

    /**
     * Listens for an incoming migration ({@code -incoming scheme:address}). Returns once listening.
     *
     * @throws io.modemu.options.ConfigurationException for a malformed address
     * @throws IOException                              when the address cannot be bound
     */
    MigrationListener listen(String address) throws IOException;
}
