package io.modemu.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.block.MemoryBlockNode;
import io.modemu.guest.GuestEnvironment;
import io.modemu.guest.GuestProgram;
import io.modemu.guest.GuestTask;
import io.modemu.machine.GuestMemory;
import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The engine with a transport that is not TCP: an in-memory pipe, with pages in the stream or written
 * one-sided through the {@link RemoteRamWriter} / {@link RemoteRamTarget} roles, with and without
 * parallel data channels. A guest keeps dirtying RAM; a device section travels alongside.
 */
class PipeMigrationTest {
    /** A guest that bumps a counter at RAM offset 0 and scribbles on a pseudo-random page per step. */
    static final class Scribbler implements GuestProgram {
        @Override
        public String name() {
            return "scribbler";
        }

        @Override
        public String description() {
            return "dirties RAM (tests)";
        }

        @Override
        public GuestTask load(GuestEnvironment env, Options options) {
            GuestMemory m = env.memory();
            long base = env.ramBase();
            long pages = env.ramSize() / 4096;
            return () -> {
                long n = m.readU64(base) + 1;
                m.writeU64(base, n);
                long page = 1 + Long.remainderUnsigned(n * 0x9E3779B97F4A7C15L, pages - 1);
                m.writeU64(base + page * 4096 + (n % 512) * 8, n);
                return 20_000;
            };
        }
    }

    /** A device section with a setting. */
    static final class Register implements Migratable {
        long value;

        @Override
        public String stateName() {
            return "register";
        }

        @Override
        public int stateVersion() {
            return 2;
        }

        @Override
        public int minimumStateVersion() {
            return 1;
        }

        @Override
        public Map<String, String> settings() {
            return Map.of("width", "64");
        }

        @Override
        public void saveState(StateWriter out) {
            out.u64(value);
        }

        @Override
        public void loadState(StateReader in, int version) {
            value = in.u64("value");
        }
    }

    static Machine machine(String name, long ram, boolean incoming, MigrationTransport t, Register reg) {
        Machine m = Machine.builder().name(name).ram(ram).vcpus(1).initialState(incoming ? RunState.INMIGRATE : RunState.PRELAUNCH)
                .contributions(Contributions.builder().add(t).add(new Scribbler()).build()).build();
        m.onMainLoop(() -> m.registerState(reg));
        m.loadGuest("scribbler", Options.of("-guest", Map.of()));
        return m;
    }

    @ParameterizedTest(name = "one-sided={0} multifd={1}")
    @CsvSource({"false,false", "false,true", "true,false"})
    void migratesRamAndDeviceStateOverAnotherTransport(boolean oneSided, boolean multifd) throws Exception {
        PipeTransport pipe = new PipeTransport(oneSided);
        Register srcReg = new Register();
        Register dstReg = new Register();
        srcReg.value = 0x1234_5678_9abcL;
        try (Machine src = machine("src", 8L << 20, false, pipe, srcReg); Machine dst = machine("dst", 8L << 20, true, pipe, dstReg);
             LiveMigration out = new LiveMigration(src); LiveMigration in = new LiveMigration(dst)) {
            MemorySegment ram = src.memory().blocks().getFirst().segment();
            SplittableRandom r = new SplittableRandom(5);
            for (long off = 4L << 20; off < ram.byteSize(); off += 8) {
                ram.set(ValueLayout.JAVA_LONG_UNALIGNED, off, r.nextLong());
            }
            // a writer of guest RAM marks what it wrote: the migration sends a page nobody marked as zero without reading it
            src.memory().blocks().getFirst().dirty().mark(4L << 20, ram.byteSize() - (4L << 20));
            src.vmStart().join();
            Thread.sleep(50);
            assertThat(in.incoming("pipe:m1", new IncomingOptions(false, false))).isEqualTo("pipe:m1");
            out.setParameters(out.parameters().withMaxBandwidth(0));
            if (multifd) {
                out.setCapability(MigrationCapability.MULTIFD, true);
            }
            out.migrate("pipe:m1");
            MigrationInfo info = out.completion().get(60, TimeUnit.SECONDS);
            assertThat(info.status()).as("%s", info).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(in.completion().get(10, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(src.runState()).isEqualTo(RunState.POSTMIGRATE);
            assertThat(dst.runState()).isEqualTo(RunState.PAUSED);
            assertThat(src.memory().blocks().getFirst().segment().mismatch(dst.memory().blocks().getFirst().segment())).isEqualTo(-1);
            assertThat(dstReg.value).isEqualTo(srcReg.value);
            assertThat(src.memory().readU64(Machine.RAM_BASE)).as("the guest ran").isPositive();
            if (multifd) {
                assertThat(info.ram().multifdBytes()).isGreaterThan(4L << 20);
            }
            dst.vmStart().join();
            long at = dst.memory().readU64(Machine.RAM_BASE);
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (dst.memory().readU64(Machine.RAM_BASE) == at && System.nanoTime() < end) {
                Thread.sleep(1);
            }
            assertThat(dst.memory().readU64(Machine.RAM_BASE)).as("the guest carries on at the destination").isGreaterThan(at);
            dst.vmStop(RunState.PAUSED).join();
        }
    }

    /**
     * One-sided writes leave no trace in the destination's dirty bitmap, and a migration sends a page
     * whose bit was never set as zero without reading it: the destination must count every page as
     * written once it took one-sided writes, or its own next migration would lose them.
     */
    @Test
    void aMachineThatTookOneSidedWritesMigratesThemOn() throws Exception {
        PipeTransport pipe = new PipeTransport(true);
        try (Machine src = machine("src", 8L << 20, false, pipe, new Register()); Machine mid = machine("mid", 8L << 20, true, pipe, new Register());
             Machine dst = machine("dst", 8L << 20, true, pipe, new Register());
             LiveMigration a = new LiveMigration(src); LiveMigration b = new LiveMigration(mid); LiveMigration c = new LiveMigration(dst)) {
            MemorySegment ram = src.memory().blocks().getFirst().segment();
            SplittableRandom r = new SplittableRandom(9);
            for (long off = 1L << 20; off < ram.byteSize(); off += 8) {
                ram.set(ValueLayout.JAVA_LONG_UNALIGNED, off, r.nextLong());
            }
            src.memory().blocks().getFirst().dirty().mark(1L << 20, ram.byteSize() - (1L << 20));
            src.vmStart().join();
            b.incoming("pipe:hop1", new IncomingOptions(false, false));
            a.setParameters(a.parameters().withMaxBandwidth(0));
            a.migrate("pipe:hop1");
            assertThat(a.completion().get(60, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(b.completion().get(10, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(mid.memory().blocks().getFirst().segment().mismatch(ram)).as("the first hop, one-sided").isEqualTo(-1);
            mid.vmStart().join();

            c.incoming("pipe:hop2", new IncomingOptions(false, false));
            b.setParameters(b.parameters().withMaxBandwidth(0));
            b.migrate("pipe:hop2");
            MigrationInfo info = b.completion().get(60, TimeUnit.SECONDS);
            assertThat(info.status()).as("%s", info).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(c.completion().get(10, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.COMPLETED);
            MemorySegment at = mid.memory().blocks().getFirst().segment();
            assertThat(at.mismatch(dst.memory().blocks().getFirst().segment())).as("the second hop carries every page").isEqualTo(-1);
        }
    }

    /**
     * QEMU flushes every drive inside the downtime (the stop's {@code bdrv_flush_all}), and a drive with
     * much unwritten data takes that long to flush: 17-27 ms of the demo's 45-97 ms downtimes. The
     * engine flushes the drives while the VM still runs, once RAM would switch over, and stops only
     * when that flush is done; the stop's own flush then has little left.
     */
    @Test
    void theDrivesAreFlushedWhileTheSourceRunsAndTheStopFlushesAfterThat() throws Exception {
        PipeTransport pipe = new PipeTransport(false);
        // flushes take 30 ms and record the source's run state, and how many had completed, as they begin
        MemoryBlockNode disk = new MemoryBlockNode(1 << 20, false, 0);
        List<String> flushes = new CopyOnWriteArrayList<>();
        try (Machine src = Machine.builder().name("src").ram(8L << 20).vcpus(1)
                .contributions(Contributions.builder().add(pipe).add(new Scribbler()).add(disk.driver("slow-flush")).build()).build();
             Machine dst = Machine.builder().name("dst").ram(8L << 20).vcpus(1).initialState(RunState.INMIGRATE)
                .contributions(Contributions.builder().add(pipe).add(new Scribbler())
                        .add(new MemoryBlockNode(1 << 20, false, 0).driver("slow-flush")).build()).build();
             LiveMigration out = new LiveMigration(src); LiveMigration in = new LiveMigration(dst)) {
            for (Machine m : List.of(src, dst)) {
                m.onMainLoop(() -> m.registerState(new Register()));
                m.loadGuest("scribbler", Options.of("-guest", Map.of()));
                m.addDrive("d0", Options.parse("-drive", "driver=slow-flush", null));
            }
            disk.setFlush(TimeUnit.MILLISECONDS.toNanos(30), () -> flushes.add(src.runState() + " after " + disk.flushed.get()));
            src.vmStart().join();
            in.incoming("pipe:flush", new IncomingOptions(false, false));
            out.setParameters(out.parameters().withMaxBandwidth(0));
            out.migrate("pipe:flush");
            MigrationInfo info = out.completion().get(60, TimeUnit.SECONDS);
            assertThat(info.status()).as("%s", info).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(in.completion().get(10, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.COMPLETED);
            // one flush while running, completed before the stop's flush began
            assertThat(flushes).containsExactly("running after 0", "finish-migrate after 1");
        }
    }
}
