package io.modemu.migration.tcp;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.migration.LiveMigration;
import io.modemu.migration.MigrationCapability;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.tcp.testbed.BuiltIn;
import io.modemu.migration.tcp.testbed.FaultyLink;
import io.modemu.migration.tcp.testbed.FaultyProxy;
import io.modemu.migration.tcp.testbed.TestVm;
import io.modemu.migration.tcp.testbed.TransportFixture;
import io.modemu.plugin.Contributions;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The tcp transport for the shared scenarios: loopback addresses, a {@link FaultyProxy} in the middle
 * for faults, a listening socket that never answers as the silent peer. Modes: one stream, and
 * {@code multifd} (parallel streams).
 */
final class TcpFixture implements TransportFixture {
    private final Contributions contributions = BuiltIn.contributions(new TcpTransport());

    @Override
    public String pluginId() {
        return "migration-tcp";
    }

    @Override
    public Contributions contributions() {
        return contributions;
    }

    @Override
    public TestVm.Spec destination(TestVm.Spec source, String name) {
        return source.destination(name);
    }

    @Override
    public String listenUri() {
        return "tcp:127.0.0.1:0";
    }

    @Override
    public String sourceUri(String destinationUri) {
        return destinationUri;
    }

    @Override
    public List<String> modes() {
        return List.of("one stream", "multifd");
    }

    @Override
    public String prepareSource(String mode, String destinationUri, LiveMigration source) {
        source.setCapability(MigrationCapability.MULTIFD, mode.equals("multifd"));
        return destinationUri;
    }

    @Override
    public void checkCompleted(String mode, MigrationInfo info, long ramSize) {
        if (mode.equals("multifd")) {
            assertThat(info.ram().multifdBytes()).as("bytes over the data channels").isGreaterThan(ramSize / 2);
        } else {
            assertThat(info.ram().multifdBytes()).isZero();
        }
    }

    @Override
    public FaultyLink faultyLink(String destinationUri) throws IOException {
        return new FaultyProxy(destinationUri.substring("tcp:".length()));
    }

    @Override
    public SilentPeer silentPeer() throws IOException {
        ServerSocket silent = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        CompletableFuture<Socket> accepted = CompletableFuture.supplyAsync(() -> {
            try {
                return silent.accept();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        return new SilentPeer() {
            @Override
            public String uri() {
                return "tcp:127.0.0.1:" + silent.getLocalPort();
            }

            @Override
            public void awaitContact(Duration timeout) throws Exception {
                assertThat(accepted.get(timeout.toMillis(), TimeUnit.MILLISECONDS).isConnected()).as("a destination that accepts and never answers").isTrue();
            }

            @Override
            public void close() {
                try {
                    silent.close();
                    if (accepted.isDone() && !accepted.isCompletedExceptionally()) {
                        accepted.join().close();
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        };
    }

    @Override
    public List<String> childDestination(Path dir) {
        return List.of("incoming=tcp:127.0.0.1:0");
    }

    @Override
    public String childSourceUri(String destinationUri) {
        return destinationUri;
    }

    @Override
    public void close() {
    }
}
