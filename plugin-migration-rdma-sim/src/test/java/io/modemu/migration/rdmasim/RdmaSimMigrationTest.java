package io.modemu.migration.rdmasim;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.machine.Machine;
import io.modemu.machine.RamBlock;
import io.modemu.machine.RunState;
import io.modemu.migration.ChannelSettings;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.LiveMigration;
import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationListener;
import io.modemu.migration.MigrationStatus;
import io.modemu.migration.MigrationTransport;
import io.modemu.migration.RemoteRamTarget;
import io.modemu.plugin.Contributions;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What only rdma-sim has, two machines in one JVM with plain RAM: a destination whose RAM the fabric
 * cannot reach, and a remote access error in the middle of the one-sided writes; each ends with the
 * source running. (The scenarios every transport shares, with a device and a guest, are in
 * {@link RdmaSimScenariosTest}.)
 */
class RdmaSimMigrationTest {
    private Path dir;
    private final List<AutoCloseable> closeables = new CopyOnWriteArrayList<>();

    @BeforeEach
    void setUp() throws IOException {
        dir = Files.createTempDirectory(Path.of("/dev/shm"), "rdmasim-e2e-");
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) {
            closeables.get(i).close();
        }
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.deleteIfExists(f);
            }
        }
        Files.deleteIfExists(dir);
    }

    /** rdma-sim, whose destinations can be made to withdraw guest RAM as soon as they exposed it. */
    static final class ForgetfulTransport implements MigrationTransport {
        final MigrationTransport inner = new RdmaSimTransport();
        volatile boolean withdrawAfterExpose;

        @Override
        public String scheme() {
            return inner.scheme();
        }

        @Override
        public String description() {
            return inner.description();
        }

        @Override
        public MigrationChannel connect(String address, ChannelSettings settings) throws IOException {
            return inner.connect(address, settings);
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
                    MigrationChannel c = l.accept(timeout);
                    return withdrawAfterExpose ? new Forgetful((RdmaSimChannel.Incoming) c) : c;
                }

                @Override
                public void close() throws IOException {
                    l.close();
                }
            };
        }
    }

    /** A destination that deregisters guest RAM right after exposing it: the source's writes hit dead keys. */
    record Forgetful(RdmaSimChannel.Incoming c) implements MigrationChannel, RemoteRamTarget {
        @Override
        public String peer() {
            return c.peer();
        }

        @Override
        public void write(ByteBuffer... srcs) throws IOException {
            c.write(srcs);
        }

        @Override
        public int read(ByteBuffer dst, Duration timeout) throws IOException {
            return c.read(dst, timeout);
        }

        @Override
        public void close() {
            c.close();
        }

        @Override
        public <T> Optional<T> role(Class<T> role) {
            return role.isInstance(this) ? Optional.of(role.cast(this)) : Optional.empty();
        }

        @Override
        public byte[] expose(List<RamBlock> blocks) throws IOException {
            byte[] token = c.expose(blocks);
            c.withdraw();
            return token;
        }

        @Override
        public void withdraw() {
            c.withdraw();
        }
    }

    private Machine machine(String name, long ram, Path ramFile, RunState initial, MigrationTransport t) {
        Machine.Builder b = Machine.builder().name(name).ram(ram).vcpus(0).initialState(initial).contributions(Contributions.builder().add(t).build());
        if (ramFile != null) {
            b.ramFile(ramFile);
        }
        Machine m = b.build();
        closeables.add(m);
        return m;
    }

    /** Half random, a quarter a repeated pattern, the rest zero. */
    private static void fill(Machine m, long seed) {
        MemorySegment ram = m.memory().blocks().getFirst().segment();
        long half = ram.byteSize() / 2;
        byte[] chunk = new byte[1 << 20];
        SplittableRandom r = new SplittableRandom(seed);
        for (long off = 0; off < half; off += chunk.length) {
            r.nextBytes(chunk);
            MemorySegment.copy(MemorySegment.ofArray(chunk), 0, ram, off, Math.min(chunk.length, half - off));
        }
        for (long off = half; off < half + half / 2; off += 4096) {
            ram.set(java.lang.foreign.ValueLayout.JAVA_LONG, off, off);
        }
        // a writer of guest RAM marks what it wrote: a page nobody marked migrates as zero
        m.memory().blocks().getFirst().dirty().mark(0, half + half / 2);
    }

    @Test
    void aDestinationWithoutFileBackedRamFailsTheMigrationWithTheWayOutAndTheSourceRuns() throws Exception {
        ForgetfulTransport t = new ForgetfulTransport();
        Machine src = machine("src", 16L << 20, null, RunState.PRELAUNCH, t);
        Machine dst = machine("dst", 16L << 20, null, RunState.INMIGRATE, t);
        fill(src, 2);
        src.vmStart().join();
        LiveMigration out = new LiveMigration(src);
        LiveMigration in = new LiveMigration(dst);
        out.migrate(in.incoming("rdma-sim:127.0.0.1:0,shm=" + dir, new IncomingOptions(false, false)) + ",shm=" + dir);
        MigrationInfo info = out.completion().get(60, TimeUnit.SECONDS);
        assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
        assertThat(info.errorDesc()).contains("not backed by a file").contains("memory-backend-file");
        assertThat(src.runState()).isEqualTo(RunState.RUNNING);
        assertThat(in.completion().get(30, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.FAILED);
    }

    @Test
    void aRemoteAccessErrorFailsTheMigrationAndTheSourceRuns() throws Exception {
        ForgetfulTransport t = new ForgetfulTransport();
        t.withdrawAfterExpose = true;
        Machine src = machine("src", 16L << 20, null, RunState.PRELAUNCH, t);
        Machine dst = machine("dst", 16L << 20, dir.resolve("dst-ram"), RunState.INMIGRATE, t);
        fill(src, 3);
        src.vmStart().join();
        LiveMigration out = new LiveMigration(src);
        LiveMigration in = new LiveMigration(dst);
        out.migrate(in.incoming("rdma-sim:127.0.0.1:0,shm=" + dir, new IncomingOptions(false, false)) + ",shm=" + dir + ",pin-all=on");
        MigrationInfo info = out.completion().get(60, TimeUnit.SECONDS);
        assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
        assertThat(info.errorDesc()).contains("REM_ACCESS_ERR").contains("rkey");
        assertThat(src.runState()).isEqualTo(RunState.RUNNING);
        assertThat(in.completion().get(30, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.FAILED);
    }
}
