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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The migration engine over rdma-sim, two machines in one JVM: RAM pages go one-sided into the
 * destination's file-backed guest RAM, the stream over SEND/RECV. Faults end with the source running.
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

    /** Records the channels a transport hands out, so that tests can inject faults. */
    static final class Recording implements MigrationTransport {
        final MigrationTransport inner = new RdmaSimTransport();
        final List<MigrationChannel> channels = new CopyOnWriteArrayList<>();
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
            MigrationChannel c = inner.connect(address, settings);
            channels.add(c);
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
                    MigrationChannel c = l.accept(timeout);
                    channels.add(c);
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

    /** Dirties guest RAM through GuestMemory while the VM runs; a stop handler parks it before the VM stops. */
    static final class Dirtier implements AutoCloseable {
        private final Machine m;
        private final Thread thread;
        private volatile boolean paused;
        private volatile boolean done;
        private volatile CompletableFuture<Void> parked = new CompletableFuture<>();

        Dirtier(Machine m) {
            this.m = m;
            m.addVmStateHandler("test-dirtier", 0, new io.modemu.machine.VmStateHandler() {
                @Override
                public java.util.concurrent.CompletionStage<Void> stop(RunState s) {
                    parked = new CompletableFuture<>();
                    paused = true;
                    return parked;
                }

                @Override
                public java.util.concurrent.CompletionStage<Void> start() {
                    paused = false;
                    return CompletableFuture.completedFuture(null);
                }
            });
            thread = Thread.ofPlatform().daemon().name("dirtier").start(this::run);
        }

        private void run() {
            SplittableRandom r = new SplittableRandom(99);
            long base = Machine.RAM_BASE;
            long size = m.memory().totalSize();
            while (!done) {
                if (paused) {
                    parked.complete(null);
                    Thread.onSpinWait();
                    continue;
                }
                for (int i = 0; i < 64; i++) {
                    m.memory().writeU64(base + (r.nextLong(size / 2) & ~7L), r.nextLong());
                }
                java.util.concurrent.locks.LockSupport.parkNanos(200_000);
            }
        }

        @Override
        public void close() throws InterruptedException {
            done = true;
            thread.join();
        }
    }

    private static long ramMismatch(Machine a, Machine b) {
        return a.memory().blocks().getFirst().segment().mismatch(b.memory().blocks().getFirst().segment());
    }

    @ParameterizedTest(name = "pin-all={0}")
    @ValueSource(booleans = {false, true})
    void theDestinationHoldsTheSourceRamAtTheStopWithPagesWrittenOneSided(boolean pinAll) throws Exception {
        Recording t = new Recording();
        Machine src = machine("src", 64L << 20, null, RunState.PRELAUNCH, t);
        Machine dst = machine("dst", 64L << 20, dir.resolve("dst-ram"), RunState.INMIGRATE, t);
        fill(src, 1);
        src.vmStart().join();
        try (Dirtier d = new Dirtier(src)) {
            LiveMigration out = new LiveMigration(src);
            LiveMigration in = new LiveMigration(dst);
            String uri = in.incoming("rdma-sim:127.0.0.1:0,shm=" + dir, new IncomingOptions(false, false));
            out.migrate(uri + ",shm=" + dir + (pinAll ? ",pin-all=on" : ""));
            MigrationInfo info = out.completion().get(120, TimeUnit.SECONDS);
            MigrationInfo dstInfo = in.completion().get(30, TimeUnit.SECONDS);
            assertThat(info.status()).as("source: %s", info).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(dstInfo.status()).as("destination: %s", dstInfo).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(src.runState()).isEqualTo(RunState.POSTMIGRATE);
            assertThat(dst.runState()).isEqualTo(RunState.PAUSED);
            assertThat(ramMismatch(src, dst)).as("first differing RAM offset").isEqualTo(-1);
            assertThat(info.ram().normal()).isPositive();
            assertThat(info.ram().duplicate()).isPositive();
            assertThat(info.ram().multifdBytes()).isZero();
            assertThat(info.ram().normalBytes()).as("pages went one-sided").isGreaterThan(32L << 20);
            RdmaSimConnection c = ((RdmaSimChannel) t.channels.stream().filter(ch -> ch instanceof RdmaSimChannel.Incoming).findFirst().orElseThrow()).connection();
            if (pinAll) {
                assertThat(c.chunkRegistrations()).isZero();
            } else {
                assertThat(c.chunkRegistrations()).isBetween(32, 64);
            }
        }
    }

    @Test
    void aDestinationWithoutFileBackedRamFailsTheMigrationWithTheWayOutAndTheSourceRuns() throws Exception {
        Recording t = new Recording();
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
        Recording t = new Recording();
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

    @Test
    void aLinkCutDuringTheRamPassesFailsTheMigrationAndTheSourceRuns() throws Exception {
        Recording t = new Recording();
        Machine src = machine("src", 64L << 20, null, RunState.PRELAUNCH, t);
        Machine dst = machine("dst", 64L << 20, dir.resolve("dst-ram"), RunState.INMIGRATE, t);
        fill(src, 4);
        src.vmStart().join();
        LiveMigration out = new LiveMigration(src);
        LiveMigration in = new LiveMigration(dst);
        // slow enough to be cut in the middle: 16 MiB/s for 32 MiB of random pages
        out.setParameters(out.parameters().withMaxBandwidth(16L << 20));
        out.migrate(in.incoming("rdma-sim:127.0.0.1:0,shm=" + dir, new IncomingOptions(false, false)) + ",shm=" + dir);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (out.info().ram() == null || out.info().ram().transferred() < (4L << 20)) {
            assertThat(out.completion()).as("still migrating: %s", out.info()).isNotDone();
            assertThat(System.nanoTime()).as("the migration makes progress").isLessThan(deadline);
            Thread.sleep(5);
        }
        ((RdmaSimChannel) t.channels.stream().filter(c -> c instanceof RdmaSimChannel.Outgoing).findFirst().orElseThrow()).connection().cutLink();
        MigrationInfo info = out.completion().get(60, TimeUnit.SECONDS);
        assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
        assertThat(info.errorDesc()).containsAnyOf("was cut", "closed the connection");
        assertThat(src.runState()).isEqualTo(RunState.RUNNING);
        assertThat(in.completion().get(30, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.FAILED);
    }

    @Test
    void aCancelledDestinationWithdrawsItsRamAndTheSourceRuns() throws Exception {
        Recording t = new Recording();
        Machine src = machine("src", 64L << 20, null, RunState.PRELAUNCH, t);
        Machine dst = machine("dst", 64L << 20, dir.resolve("dst-ram"), RunState.INMIGRATE, t);
        fill(src, 5);
        src.vmStart().join();
        LiveMigration out = new LiveMigration(src);
        LiveMigration in = new LiveMigration(dst);
        out.setParameters(out.parameters().withMaxBandwidth(16L << 20));
        out.migrate(in.incoming("rdma-sim:127.0.0.1:0,shm=" + dir, new IncomingOptions(false, false)) + ",shm=" + dir);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (out.info().ram() == null || out.info().ram().transferred() < (4L << 20)) {
            assertThat(out.completion()).as("still migrating: %s", out.info()).isNotDone();
            assertThat(System.nanoTime()).as("the migration makes progress").isLessThan(deadline);
            Thread.sleep(5);
        }
        in.cancel();
        MigrationInfo info = out.completion().get(60, TimeUnit.SECONDS);
        assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
        assertThat(src.runState()).isEqualTo(RunState.RUNNING);
        assertThat(in.completion().get(30, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.FAILED);
    }
}
