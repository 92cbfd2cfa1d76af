package io.modemu.migration.rdmasim;

import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationListener;
import io.modemu.migration.MigrationTransport;
import java.io.IOException;
import java.time.Duration;

/**
 * The {@code rdma-sim:HOST:PORT} migration transport (see {@link RdmaSimAddress} for the options).
 *
 * <p>This adapter implements the transport SPI as it stands on this branch (byte streams only). The
 * engine's SPI with one-sided RAM writes (the {@code RemoteRamWriter} / {@code RemoteRamTarget}
 * channel roles) is implemented by the adapters in {@code src/engine-spi}, to take this file's place
 * when the engine lands; both delegate to {@link RdmaSimConnection} and {@link RdmaSimAcceptor}.
 */
public final class RdmaSimTransport implements MigrationTransport {
    static final Duration IO_TIMEOUT = Duration.ofSeconds(10);

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
    public MigrationChannel connect(String address, Duration timeout) throws IOException {
        return new RdmaSimChannel(RdmaSimConnection.connect(RdmaSimAddress.parse(address), timeout, IO_TIMEOUT));
    }

    @Override
    public MigrationListener listen(String address) throws IOException {
        RdmaSimAcceptor acceptor = RdmaSimAcceptor.listen(RdmaSimAddress.parse(address), IO_TIMEOUT);
        return new MigrationListener() {
            @Override
            public String address() {
                return acceptor.address();
            }

            @Override
            public MigrationChannel accept(Duration timeout) throws IOException {
                return new RdmaSimChannel(acceptor.accept(timeout));
            }

            @Override
            public void close() throws IOException {
                acceptor.close();
            }
        };
    }
}
