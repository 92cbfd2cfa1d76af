package io.modemu.migration.rdmasim;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.machine.RamBlock;
import io.modemu.migration.ChannelSettings;
import io.modemu.migration.LiveMigration;
import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationListener;
import io.modemu.migration.MigrationTransport;
import io.modemu.migration.rdmasim.verbs.ConnectRequest;
import io.modemu.migration.rdmasim.verbs.ConnectionListener;
import io.modemu.migration.rdmasim.verbs.FabricSettings;
import io.modemu.migration.rdmasim.verbs.RdmaDevice;
import io.modemu.migration.tcp.testbed.BuiltIn;
import io.modemu.migration.tcp.testbed.FaultyLink;
import io.modemu.migration.tcp.testbed.TestVm;
import io.modemu.migration.tcp.testbed.TransportFixture;
import io.modemu.plugin.Contributions;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.net.InetSocketAddress;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * The rdma-sim transport for the shared scenarios. The fabric's files live in a directory of its own
 * under {@code /dev/shm}, and so does every destination's guest RAM (a shared file mapping, which the
 * source's RDMA WRITEs land in). Faults ({@link RdmaSimLink}) use the fabric's own hook where it has
 * one — {@code cutLink()}, a pulled cable — and otherwise act on the engine's stream where the
 * destination reads it (truncation, corruption). Modes: RAM registered in chunks on demand (the
 * default) and all of it up front ({@code pin-all}).
 */
final class RdmaSimFixture implements TransportFixture {
    private final Path dir;
    private final InstrumentedTransport transport = new InstrumentedTransport();
    private final Contributions contributions = BuiltIn.contributions(transport);
    private final AtomicInteger ramFiles = new AtomicInteger();

    RdmaSimFixture() throws IOException {
        dir = Files.createTempDirectory(Path.of("/dev/shm"), "rdmasim-scenarios-");
    }

    @Override
    public String pluginId() {
        return "migration-rdma-sim";
    }

    @Override
    public Contributions contributions() {
        return contributions;
    }

    private Path newRamFile(String name) {
        return dir.resolve(name + "-" + ramFiles.incrementAndGet() + ".ram");
    }

    @Override
    public TestVm.Spec destination(TestVm.Spec source, String name) {
        TestVm.Spec d = source.destination(name);
        d.ramFile = newRamFile(name);
        return d;
    }

    @Override
    public String listenUri() {
        return "rdma-sim:127.0.0.1:0,shm=" + dir;
    }

    @Override
    public String sourceUri(String destinationUri) {
        return destinationUri + ",shm=" + dir;
    }

    @Override
    public List<String> modes() {
        return List.of("chunks", "pin-all");
    }

    @Override
    public String prepareSource(String mode, String destinationUri, LiveMigration source) {
        return sourceUri(destinationUri) + (mode.equals("pin-all") ? ",pin-all=on" : "");
    }

    @Override
    public void checkCompleted(String mode, MigrationInfo info, long ramSize) {
        assertThat(info.ram().multifdBytes()).isZero();
        assertThat(info.ram().normalBytes()).as("page bytes").isGreaterThan(ramSize / 4);
        assertThat(transport.lastOutgoing.streamBytes()).as("stream bytes: the pages went one-sided").isLessThan(info.ram().normalBytes() / 8);
        int registrations = transport.lastIncoming.connection().chunkRegistrations();
        if (mode.equals("pin-all")) {
            assertThat(registrations).as("chunks registered on demand").isZero();
        } else {
            assertThat(registrations).as("chunks registered on demand").isBetween(1, (int) (ramSize >> 20));
        }
    }

    @Override
    public FaultyLink faultyLink(String destinationUri) {
        RdmaSimLink link = new RdmaSimLink(sourceUri(destinationUri), transport);
        transport.armed = link;
        return link;
    }

    @Override
    public SilentPeer silentPeer() throws IOException {
        RdmaDevice device = RdmaDevice.open(FabricSettings.defaults().withShmDirectory(dir));
        ConnectionListener listener;
        try {
            listener = device.listen(new InetSocketAddress("127.0.0.1", 0));
        } catch (IOException | RuntimeException e) {
            device.close();
            throw e;
        }
        return new SilentPeer() {
            @Override
            public String uri() {
                return "rdma-sim:127.0.0.1:" + listener.localAddress().getPort() + ",shm=" + dir;
            }

            @Override
            public void awaitContact(Duration timeout) throws IOException {
                ConnectRequest r = listener.accept(timeout);
                assertThat(r).as("a connect request that is never answered").isNotNull();
            }

            @Override
            public void close() {
                try {
                    listener.close();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                } finally {
                    device.close();
                }
            }
        };
    }

    @Override
    public List<String> childDestination(Path workDir) {
        return List.of("incoming=" + listenUri(), "ram-file=" + newRamFile("destination"));
    }

    @Override
    public String childSourceUri(String destinationUri) {
        return sourceUri(destinationUri);
    }

    @Override
    public void close() {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path f : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(f);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The rdma-sim transport with every channel wrapped ({@link RdmaSimLink.Outgoing}, {@link RdmaSimLink.Incoming}):
     * the wrappers count stream bytes, keep the channel's one-sided role, and carry the faults of the
     * armed link if it takes them (the first channel of each end after it was armed).
     */
    static final class InstrumentedTransport implements MigrationTransport {
        private final RdmaSimTransport inner = new RdmaSimTransport();
        volatile RdmaSimLink armed;
        volatile RdmaSimLink.Outgoing lastOutgoing;
        volatile RdmaSimLink.Incoming lastIncoming;

        @Override
        public String scheme() {
            return inner.scheme();
        }

        @Override
        public String description() {
            return inner.description();
        }

        private RdmaSimLink linkFor(boolean outgoing) {
            RdmaSimLink link = armed;
            return link != null && link.take(outgoing) ? link : null;
        }

        @Override
        public MigrationChannel connect(String address, ChannelSettings settings) throws IOException {
            RdmaSimLink.Outgoing c = new RdmaSimLink.Outgoing((RdmaSimChannel) inner.connect(address, settings), linkFor(true));
            lastOutgoing = c;
            return c;
        }

        @Override
        public MigrationListener listen(String address, ChannelSettings settings) throws IOException {
            MigrationListener l = inner.listen(address, settings);
            return new MigrationListener() {
                @Override
                public String address() {
                    return l.address();
                }

                @Override
                public MigrationChannel accept(Duration timeout) throws IOException {
                    RdmaSimLink.Incoming c = new RdmaSimLink.Incoming((RdmaSimChannel) l.accept(timeout), linkFor(false));
                    lastIncoming = c;
                    return c;
                }

                @Override
                public void close() throws IOException {
                    l.close();
                }
            };
        }
    }

    /**
     * A destination RAM block backed by a new file of {@code size} bytes mapped shared, as the platform maps
     * guest RAM with a backing file (what the destination registers for one-sided writes).
     */
    static RamBlock fileBackedRam(String name, long base, Path file, long size, Arena arena) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.truncate(size);
            return new RamBlock(name, base, ch.map(FileChannel.MapMode.READ_WRITE, 0, size, arena), file);
        }
    }
}
