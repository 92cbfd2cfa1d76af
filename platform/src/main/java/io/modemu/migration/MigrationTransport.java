package io.modemu.migration;

import java.io.IOException;
import java.util.Optional;

/**
 * A migration transport a plugin contributes (found with {@link java.util.ServiceLoader}), picked by
 * the scheme of a migration URI: {@code tcp:HOST:PORT} goes to the transport whose
 * {@link #scheme()} is {@code tcp}. A new transport needs no platform change.
 *
 * <p>A transport only moves bytes: the engine ({@link LiveMigration}) owns the stream format, the
 * handshake, the RAM passes and the return path. For parallel streams ({@code multifd}) the engine
 * calls {@link #connect} once per stream and the destination accepts as many connections from the
 * same {@link MigrationListener}; the engine pairs them itself. A transport that can write guest RAM
 * one-sided (RDMA) adds the {@link RemoteRamWriter} / {@link RemoteRamTarget} roles to its channels.
 * See {@code docs/transports.md}.
 *
 * <p>Implementations are thread-safe: several migrations (of several machines) may use one instance.
 */
public interface MigrationTransport {
    /** The URI scheme, without the colon (for example {@code tcp}). */
    String scheme();

    /** One line for {@code modemu plugins}. */
    String description();

    /**
     * Connects to a destination. Runs on the migration thread; blocks up to
     * {@link ChannelSettings#connectTimeout()}. An interrupt of the calling thread aborts the attempt
     * (the engine interrupts it on cancel).
     *
     * @param address  the URI without {@code scheme:} (for example {@code 127.0.0.1:4444})
     * @param settings timeouts the channel must honour
     * @throws io.modemu.options.ConfigurationException for a malformed address
     * @throws IOException with a message naming the address when the connection fails
     */
    MigrationChannel connect(String address, ChannelSettings settings) throws IOException;

    /**
     * Listens for an incoming migration ({@code -incoming scheme:address}). Returns once listening;
     * the engine accepts one connection per stream from the listener.
     *
     * @throws io.modemu.options.ConfigurationException for a malformed address
     * @throws IOException                              when the address cannot be bound
     */
    MigrationListener listen(String address, ChannelSettings settings) throws IOException;

    /**
     * An address this transport can {@link #listen} on and {@link #connect} to within one process
     * over loopback (for example {@code 127.0.0.1:0}), or empty. With one, the engine migrates a small
     * machine of its own to itself over this transport once per process, in the background, so that
     * the JIT has compiled the per-page code on both ends before the first real migration (see
     * {@code docs/transports.md}); a real migration that starts stops that warm-up at once.
     */
    default Optional<String> loopbackAddress() {
        return Optional.empty();
    }

    /**
     * What the warm-up appends to the listener's address when it connects, one warm-up migration for
     * each, the most common last: source-side modes whose code differs (rdma-sim: {@code ,pin-all=on}
     * and the default). A mode the warm-up never ran has its branches compiled as traps in the page
     * loop, which the first real migration in that mode then throws away. Only asked when
     * {@link #loopbackAddress()} gives an address.
     */
    default java.util.List<String> loopbackVariants() {
        return java.util.List.of("");
    }

    /**
     * Whether the destination's guest RAM must be a shared file mapping for this transport, because the
     * source writes into it one-sided ({@link RemoteRamTarget}; rdma-sim). The warm-up gives its
     * destination machine such RAM only then, and anonymous RAM otherwise, as the destinations of such
     * transports usually have: the compiled loading code is specialized on the kind of memory it saw,
     * and meeting the other kind first in a real migration throws it away.
     */
    default boolean destinationRamMustBeShared() {
        return false;
    }
}
