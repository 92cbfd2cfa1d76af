package io.modemu.virtio.blk;

import static io.modemu.guest.virtio.VirtioBlkGuest.S_IOERR;
import static io.modemu.guest.virtio.VirtioBlkGuest.S_OK;
import static io.modemu.guest.virtio.VirtioBlkGuest.T_IN;
import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.aio.AioContext;
import io.modemu.aio.DeterministicScheduler;
import io.modemu.block.BlockBackend;
import io.modemu.block.BlockCompletion;
import io.modemu.block.BlockDriver;
import io.modemu.block.BlockNode;
import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A host bug under a request (here a block driver whose size throws, as a node that lost its image
 * might) fails that request with IOERR; the device and the backend count nothing that never completes,
 * so the VM still stops (drains) and nothing escapes into a loop.
 */
class HostBugTest {
    /** Block driver {@code buggydisk}: 1 MiB of zeros whose {@code size()} throws while {@link #broken}. */
    static final class BuggyDiskDriver implements BlockDriver {
        volatile boolean broken;

        @Override
        public String name() {
            return "buggydisk";
        }

        @Override
        public String description() {
            return "a disk whose size throws on demand";
        }

        @Override
        public BlockNode open(Options options) {
            return new BlockNode() {
                @Override
                public String describe() {
                    return "buggydisk";
                }

                @Override
                public long size() {
                    if (broken) {
                        throw new IllegalStateException("buggydisk lost its image");
                    }
                    return 1 << 20;
                }

                @Override
                public boolean isReadOnly() {
                    return false;
                }

                @Override
                public void read(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
                    buffer.fill((byte) 0);
                    done.complete(0);
                }

                @Override
                public void write(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
                    done.complete(0);
                }

                @Override
                public void flush(AioContext ctx, BlockCompletion done) {
                    done.complete(0);
                }

                @Override
                public void discard(AioContext ctx, long offset, long length, BlockCompletion done) {
                    done.complete(0);
                }

                @Override
                public void writeZeroes(AioContext ctx, long offset, long length, BlockCompletion done) {
                    done.complete(0);
                }

                @Override
                public void close() {
                }
            };
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4, 5, 6, 7, 8})
    void aRequestThatHitsAHostBugFailsWithIoerrAndTheVmStillStops(long seed) {
        DeterministicScheduler sched = new DeterministicScheduler(seed);
        BuggyDiskDriver disk = new BuggyDiskDriver();
        Machine m = Machine.builder().ram(8L << 20).vcpus(1).iothread("io0").loopDriver(sched)
                .contributions(Contributions.builder().add(new VirtioBlkDeviceType()).add(disk).build()).build();
        try {
            BlockBackend be = m.addDrive("d0", Options.parse("-drive", "driver=buggydisk", null));
            VirtioBlkDevice dev = (VirtioBlkDevice) m.addDevice(Options.parse("-device", "virtio-blk-device,drive=d0,iothread=io0", "driver"));
            sched.await(m.vmStart());
            long base = dev.slot().base();
            VirtioBlkGuest.beginReset(m.mmio(), base);
            assertThat(sched.runUntil(() -> VirtioBlkGuest.resetDone(m.mmio(), base), 100_000)).isTrue();
            VirtioBlkGuest g = VirtioBlkGuest.initialize(m.memory(), m.mmio(), base, Harness.DRIVER_STATE, VirtioBlkGuest.Setup.defaults());
            Completions c = new Completions();

            g.submit(0, T_IN, 0, Harness.BUFFERS, 4096, true, 1);
            g.kick(0);
            assertThat(sched.runUntil(() -> g.poll(0, c, 8) >= 0 && c.count() == 1, 1_000_000)).isTrue();
            disk.broken = true;
            for (int i = 0; i < 4; i++) {
                g.submit(0, T_IN, 8L * i, Harness.BUFFERS + 4096L * i, 4096, true, 10 + i);
            }
            g.kick(0);
            assertThat(sched.runUntil(() -> g.poll(0, c, 8) >= 0 && c.count() == 5, 1_000_000))
                    .as("seed %d: every request is answered (have %d)", seed, c.count()).isTrue();

            assertThat(c.status(1)).isEqualTo(S_OK);
            for (int i = 0; i < 4; i++) {
                assertThat(c.status(10 + i)).as("request %d", i).isEqualTo(S_IOERR);
            }
            // the stop flushes the drive: with the bug still there the flush would fail (and say so)
            disk.broken = false;
            sched.await(m.vmStop(RunState.PAUSED));
            assertThat(dev.inFlight()).isZero();
            assertThat(be.inFlight()).isZero();
            assertThat(be.context()).isSameAs(m.mainLoop());
            for (AioContext ctx : java.util.List.of(m.mainLoop(), m.iothread("io0"))) {
                assertThat(ctx.uncaughtErrors()).as("errors escaped into %s", ctx.name()).isZero();
            }
        } finally {
            m.close();
        }
    }
}
