package io.modemu.virtio.blk;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.guest.GuestTask;
import io.modemu.machine.DirtyBitmap;
import io.modemu.machine.RamBlock;
import io.modemu.machine.RunState;
import io.modemu.options.Options;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The stock disk-verify guest program on the virtio-blk device: it finds the disk, verifies, reports, dirties RAM. */
class DiskVerifyOnVirtioBlkTest {
    private static GuestTask load(Harness h, String options) {
        return h.machine.loadGuest("disk-verify", Options.parse("-guest", options, null));
    }

    private static long stat(GuestTask t, String key) {
        Object v = t.status().get(key);
        return v == null ? 0 : ((Number) v).longValue();
    }

    private static void verifiesBlocks(Harness h) {
        h.drive("d0", "size=2M,latency-ns=20us");
        h.device("drive=d0,iothread=io0");
        GuestTask t = load(h, "blocks=64,queue-depth=16,dirty-size=64k");
        h.start();
        h.awaitTrue(() -> stat(t, "verified") >= 300, "300 verified blocks");
        assertThat(t.status()).containsEntry("phase", "running").containsEntry("failed", 0L).containsEntry("io-errors", 0L)
                .containsEntry("disk", "0x" + Long.toHexString(h.device.slot().base()));
        assertThat(stat(t, "generation")).isGreaterThanOrEqualTo(5);
        assertThat(stat(t, "writes")).isGreaterThanOrEqualTo(stat(t, "reads"));
        assertThat(h.uncaughtErrors()).isZero();
    }

    @Test
    void verifiesBlocksGenerationAfterGenerationSimulated() {
        try (Harness h = Harness.simulated(21, 1)) {
            verifiesBlocks(h);
        }
    }

    @Test
    void verifiesBlocksGenerationAfterGenerationWithThreads() {
        try (Harness h = Harness.threads(1)) {
            verifiesBlocks(h);
        }
    }

    @Test
    void probesPastANonBlockDeviceToFindItsDisk() {
        try (Harness h = Harness.simulated(22, 0)) {
            // slot 0: a virtio-mmio network device (id 1) as far as a probing guest can tell
            io.modemu.device.MmioDevice net = new io.modemu.device.MmioDevice() {
                @Override
                public long mmioRead(long offset, int size) {
                    return switch ((int) offset) {
                        case 0x000 -> 0x74726976L;
                        case 0x004 -> 2;
                        case 0x008 -> 1;
                        default -> 0;
                    };
                }

                @Override
                public void mmioWrite(long offset, int size, long value) {
                }
            };
            h.await(h.machine.mainLoop().submit(() -> h.machine.attachMmio("net0", net)));
            h.drive("d0", "size=1M");
            VirtioBlkDevice disk = h.device("drive=d0");
            assertThat(disk.slot().index()).isEqualTo(1);
            GuestTask t = load(h, "blocks=8,queue-depth=4,indirect=on,dirty-size=64k");
            h.start();
            h.awaitTrue(() -> stat(t, "verified") >= 16, "16 verified blocks");
            assertThat(t.status().get("disk")).isEqualTo("0x" + Long.toHexString(disk.slot().base()));
        }
    }

    @Test
    void reportsBlocksThatComeBackWrong() {
        try (Harness h = Harness.simulated(23, 1)) {
            h.drive("d0", "size=1M");
            h.device("drive=d0,iothread=io0");
            h.disks.corruptReadsOf(8 * 5 + 3); // a sector of block 5
            GuestTask t = load(h, "blocks=16,queue-depth=8,dirty-size=64k");
            h.start();
            h.awaitTrue(() -> stat(t, "verified") >= 45, "three generations");
            assertThat(stat(t, "failed")).isGreaterThanOrEqualTo(2);
            assertThat(t.status()).containsEntry("first-failed-block", 5L);
        }
    }

    @Test
    void withoutADiskItSaysSoAndHalts() {
        try (Harness h = Harness.simulated(24, 0)) {
            GuestTask t = load(h, "blocks=8");
            h.start();
            h.awaitTrue(() -> "no-disk".equals(t.status().get("phase")), "no-disk");
            long steps = h.machine.vcpus().getFirst().steps();
            h.idle();
            assertThat(h.machine.vcpus().getFirst().steps()).as("the vCPU halted").isEqualTo(steps);
        }
    }

    @Test
    void aTooSmallDiskIsReportedAsAFailure() {
        try (Harness h = Harness.simulated(25, 0)) {
            h.drive("d0", "size=64k");
            h.device("drive=d0");
            GuestTask t = load(h, "blocks=100");
            h.start();
            h.awaitTrue(() -> "failed".equals(t.status().get("phase")), "failed phase");
        }
    }

    @Test
    void dirtiesGuestRamAtTheConfiguredRate() {
        try (Harness h = Harness.simulated(26, 1)) {
            h.drive("d0", "size=1M,latency-ns=50us");
            h.device("drive=d0,iothread=io0");
            GuestTask t = load(h, "blocks=16,queue-depth=4,dirty-rate=64M,dirty-size=1M");
            h.start();
            h.awaitTrue(() -> stat(t, "dirty-bytes") > 0, "dirtying starts");
            long t0 = h.scheduler.now();
            long b0 = stat(t, "dirty-bytes");
            RamBlock ram = h.machine.memory().blocks().getFirst();
            ram.dirty().harvestInto(new long[ram.dirty().words()]);
            h.awaitTrue(() -> h.scheduler.now() - t0 >= 20_000_000, "20 ms of guest time");
            long bytes = stat(t, "dirty-bytes") - b0;
            double seconds = (h.scheduler.now() - t0) / 1e9;
            assertThat(bytes / seconds).as("bytes dirtied per second").isBetween(0.8 * 64 * (1 << 20), 1.2 * 64 * (1 << 20));
            long[] bits = new long[ram.dirty().words()];
            ram.dirty().harvestInto(bits);
            long pages = 0;
            for (long w : bits) {
                pages += Long.bitCount(w);
            }
            assertThat(pages).as("pages dirtied in the bitmap").isGreaterThanOrEqualTo(Math.min(256, bytes / DirtyBitmap.PAGE_SIZE) - 2);
            assertThat(stat(t, "failed")).isZero();
        }
    }

    /** Stop and start under a guest that keeps many requests in flight (queue depth 96), asked from a foreign thread. */
    private static void survivesStopStart(Harness h, int cycles) {
        h.drive("d0", "size=2M,latency-ns=30us");
        h.device("drive=d0,iothread=io0");
        GuestTask t = load(h, "blocks=256,queue-depth=96,indirect=on,dirty-size=64k");
        h.start();
        List<Integer> inFlightAtStop = new ArrayList<>();
        for (int i = 0; i < cycles; i++) {
            long before = stat(t, "verified") + stat(t, "writes");
            h.awaitTrue(() -> h.device.inFlight() >= 64, "64 requests in flight");
            inFlightAtStop.add(h.device.inFlight());
            Thread asker = Thread.ofPlatform().start(() -> h.machine.vmStop(RunState.PAUSED));
            try {
                asker.join();
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
            h.awaitTrue(() -> h.machine.runState() == RunState.PAUSED && h.device.backend().context() == h.machine.mainLoop()
                    && h.device.inFlight() == 0, "stopped and drained");
            h.await(h.machine.vmStart());
            h.awaitTrue(() -> stat(t, "verified") + stat(t, "writes") > before + 100, "progress after the start");
        }
        assertThat(stat(t, "failed")).isZero();
        assertThat(stat(t, "io-errors")).isZero();
        assertThat(h.uncaughtErrors()).isZero();
    }

    @Test
    void keepsVerifyingThroughStopStartWithRealThreads() {
        try (Harness h = Harness.threads(1)) {
            survivesStopStart(h, 10);
        }
    }

    @Test
    void keepsVerifyingThroughStopStartUnderSeeds() {
        for (long seed = 1; seed <= 100; seed++) {
            try (Harness h = Harness.simulated(seed, 1)) {
                survivesStopStart(h, 2);
            } catch (AssertionError e) {
                throw new AssertionError("seed " + seed + ": " + e.getMessage(), e);
            }
        }
    }
}
