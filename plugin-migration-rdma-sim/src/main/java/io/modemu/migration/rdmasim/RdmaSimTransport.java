package io.modemu.migration.rdmasim;

import io.modemu.migration.ChannelSettings;
import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationListener;
import io.modemu.migration.MigrationTransport;
import java.io.IOException;
import java.util.Optional;
import java.time.Duration;

/**
 * The {@code rdma-sim:HOST:PORT} migration transport (see {@link RdmaSimAddress} for the options),
 * for the migration engine's SPI: the main channel carries the engine's stream over SEND/RECV and,
 * in the {@link io.modemu.migration.RemoteRamWriter} / {@link io.modemu.migration.RemoteRamTarget}
 * roles, writes guest RAM pages one-sided with RDMA WRITE.
 */
public final class RdmaSimTransport implements MigrationTransport {
    public RdmaSimTransport() {
        ClassPreloader.startOnce();
    }

    @Override
    public String scheme() {
        return "rdma-sim";
    }

    @Override
    public String description() {
        return "live migration over a simulated RDMA fabric (shared memory between processes on one host)";
    }

    @Override
    public MigrationChannel connect(String address, ChannelSettings settings) throws IOException {
        return new RdmaSimChannel.Outgoing(RdmaSimConnection.connect(RdmaSimAddress.parse(address), settings.connectTimeout(), settings.ioTimeout()));
    }

    /**
     * Loopback with the default fabric settings: the engine's warm-up migrates a machine of its own over
     * this transport, so the one-sided write path is compiled before the first real migration.
     */
    @Override
    public Optional<String> loopbackAddress() {
        return Optional.of("127.0.0.1:0");
    }

    /** RAM pages are RDMA WRITEs into the destination's guest RAM, which must be a shared file mapping. */
    @Override
    public boolean destinationRamMustBeShared() {
        return true;
    }

    /** Both registration modes: pin-all, then chunks (the default) last. */
    @Override
    public java.util.List<String> loopbackVariants() {
        return java.util.List.of(",pin-all=on", "");
    }

    @Override
    public MigrationListener listen(String address, ChannelSettings settings) throws IOException {
        RdmaSimAcceptor acceptor = RdmaSimAcceptor.listen(RdmaSimAddress.parse(address), settings.ioTimeout());
        return new MigrationListener() {
            @Override
            public String address() {
                return acceptor.address();
            }

            @Override
            public MigrationChannel accept(Duration timeout) throws IOException {
                return new RdmaSimChannel.Incoming(acceptor.accept(timeout));
            }

            @Override
            public void close() throws IOException {
                acceptor.close();
            }
        };
    }
}
