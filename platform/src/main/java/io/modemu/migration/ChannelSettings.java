package io.modemu.migration;

import java.time.Duration;
import java.util.Objects;

/**
 * What the engine asks of a transport's channels.
 *
 * @param connectTimeout how long {@link MigrationTransport#connect} may take
 * @param ioTimeout      how long a {@link MigrationChannel#write} may wait without the peer taking a
 *                       single byte before it fails: a peer that stops reading fails the migration
 *                       instead of hanging it (reads take their own timeout per call)
 */
public record ChannelSettings(Duration connectTimeout, Duration ioTimeout) {
    public ChannelSettings {
        Objects.requireNonNull(connectTimeout, "connectTimeout");
        Objects.requireNonNull(ioTimeout, "ioTimeout");
        if (connectTimeout.isNegative() || connectTimeout.isZero() || ioTimeout.isNegative() || ioTimeout.isZero()) {
            throw new IllegalArgumentException("channel timeouts must be positive: connect " + connectTimeout + ", io " + ioTimeout);
        }
    }

    /** Ten seconds each. */
    public static ChannelSettings defaults() {
        return new ChannelSettings(Duration.ofSeconds(10), Duration.ofSeconds(10));
    }
}
