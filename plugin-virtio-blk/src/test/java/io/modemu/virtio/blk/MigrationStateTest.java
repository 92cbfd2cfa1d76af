package io.modemu.virtio.blk;

import static io.modemu.guest.virtio.VirtioBlkGuest.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.aio.DeterministicScheduler;
import io.modemu.aio.LoopDriver;
import io.modemu.aio.ThreadLoopDriver;
import io.modemu.block.Errno;
import io.modemu.guest.GuestTask;
import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.guest.virtio.VirtioMmioRegisters;
import io.modemu.machine.RamBlock;
import io.modemu.machine.RunState;
import io.modemu.migration.MigrationStreamException;
import io.modemu.migration.StateReader;
import io.modemu.migration.StateWriter;
import io.modemu.options.Options;
import io.modemu.virtio.blk.TestDiskDriver.Op;
import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * The device's migration state: saved mid-traffic on a stopped source, loaded into a fresh device on
 * a destination that shares the disk and received the guest RAM, which then carries on; parked
 * requests travel with it; a hostile state is refused naming the field.
 */
class MigrationStateTest {
    private static final String DEVICE = "drive=d0,iothread=io0,id=vd0";

    private static Harness machine(Supplier<LoopDriver> loops, TestDiskDriver disks, RunState initial, String deviceOptions) {
        Harness h = Harness.create(loops.get(), disks, 1, Harness.RAM, initial);
        h.drive("d0", "size=4M,store=shared,latency-ns=40us");
        h.device(deviceOptions);
        return h;
    }

    /** What the migration engine does for RAM and this device once the source is stopped. */
    private static byte[] saveAndCopy(Harness src, Harness dst) {
        byte[] state = src.await(src.machine.mainLoop().submit(() -> {
            StateWriter w = new StateWriter();
            src.device.saveState(w);
            return w.toByteArray();
        }));
        RamBlock a = src.machine.memory().blocks().getFirst();
        RamBlock b = dst.machine.memory().blocks().getFirst();
        MemorySegment.copy(a.segment(), 0, b.segment(), 0, a.size());
        return state;
    }

    private static void load(Harness dst, byte[] state) {
        dst.await(dst.machine.mainLoop().submit(() -> {
            dst.device.loadState(new StateReader(dst.device.stateName(), state), VirtioBlkDevice.STATE_VERSION);
            return null;
        }));
    }

    private static long status(Harness h, String key) {
        GuestTask t = h.machine.vcpus().getFirst().task();
        return ((Number) t.status().get(key)).longValue();
    }

    private static void diskVerifyCarriesOnAtTheDestination(Supplier<LoopDriver> loops) {
        TestDiskDriver disks = new TestDiskDriver();
        Harness src = machine(loops, disks, RunState.PRELAUNCH, DEVICE);
        Harness dst = null;
        try {
            src.machine.loadGuest("disk-verify", Options.parse("-guest", "blocks=48,queue-depth=24,dirty-size=64k", null));
            src.start();
            src.awaitTrue(() -> status(src, "verified") >= 60 && src.device.inFlight() >= 8, "disk-verify mid-traffic on the source");
            src.await(src.machine.vmStop(RunState.FINISH_MIGRATE));
            assertThat(src.device.inFlight()).isZero();
            long verified = status(src, "verified");
            long writes = status(src, "writes");
            assertThat(status(src, "failed")).isZero();

            dst = machine(loops, disks, RunState.INMIGRATE, DEVICE);
            dst.machine.loadGuest("disk-verify", Options.parse("-guest", "blocks=48,queue-depth=24,dirty-size=64k", null));
            byte[] state = saveAndCopy(src, dst);
            load(dst, state);
            dst.start();
            Harness d = dst;
            d.awaitTrue(() -> status(d, "verified") >= verified + 150, "disk-verify carries on at the destination");
            assertThat(status(d, "failed")).as("no block failed verification across the migration").isZero();
            assertThat(status(d, "io-errors")).isZero();
            assertThat(status(d, "writes")).isGreaterThan(writes);
            assertThat(d.device.transport().status() & 4).as("the destination device is DRIVER_OK without a new handshake").isEqualTo(4);
            assertThat(src.uncaughtErrors() + d.uncaughtErrors()).isZero();
        } finally {
            src.machine.close();
            if (dst != null) {
                dst.close();
            }
        }
    }

    @Test
    void aDeviceSavedMidTrafficCarriesOnInAFreshDeviceSimulated() {
        for (long seed = 1; seed <= 20; seed++) {
            long s = seed;
            diskVerifyCarriesOnAtTheDestination(() -> new DeterministicScheduler(s));
        }
    }

    @Test
    void aDeviceSavedMidTrafficCarriesOnInAFreshDeviceWithThreads() {
        diskVerifyCarriesOnAtTheDestination(ThreadLoopDriver::new);
    }

    @Test
    void parkedRequestsTravelAndAreRetriedAtTheDestination() {
        TestDiskDriver disks = new TestDiskDriver();
        Harness src = machine(() -> new DeterministicScheduler(11), disks, RunState.PRELAUNCH, DEVICE + ",werror=stop");
        Harness dst = null;
        try {
            src.start();
            VirtioBlkGuest g = src.guest(VirtioBlkGuest.Setup.defaults());
            src.machine.memory().write(Harness.buffer(0), new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
            disks.failNext(Op.WRITE, Errno.EIO, -1);
            g.submit(0, T_OUT, 24, Harness.buffer(0), 4096, false, 1);
            g.submit(0, T_IN, 0, Harness.buffer(1), 4096, true, 2);
            g.kick(0);
            src.awaitTrue(() -> src.machine.runState() == RunState.IO_ERROR && src.device.parkedRequests() == 1
                    && src.device.backend().context() == src.machine.mainLoop(), "the write parked, the VM in io-error");
            src.await(src.machine.vmStop(RunState.FINISH_MIGRATE));

            dst = machine(() -> new DeterministicScheduler(12), disks, RunState.INMIGRATE, DEVICE + ",werror=stop");
            byte[] state = saveAndCopy(src, dst);
            load(dst, state);
            assertThat(dst.device.parkedRequests()).isEqualTo(1);
            disks.clearFaults();
            dst.start();
            VirtioBlkGuest g2 = VirtioBlkGuest.attach(dst.machine.memory(), dst.machine.mmio(), Harness.DRIVER_STATE);
            Completions c = new Completions();
            c.awaitCount(dst, g2, 0, 2);
            assertThat(c.status(1)).as("the parked write, retried at the destination").isEqualTo(S_OK);
            assertThat(c.status(2)).isEqualTo(S_OK);
            assertThat(disks.store("shared").asSlice(24 * 512, 8).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE))
                    .containsExactly(1, 2, 3, 4, 5, 6, 7, 8);
            assertThat(src.uncaughtErrors() + dst.uncaughtErrors()).isZero();
        } finally {
            src.machine.close();
            if (dst != null) {
                dst.close();
            }
        }
    }

    @Test
    void savingWhileRequestsAreInFlightIsRefused() {
        try (Harness h = machine(() -> new DeterministicScheduler(5), new TestDiskDriver(), RunState.PRELAUNCH, DEVICE)) {
            h.start();
            VirtioBlkGuest g = h.guest(VirtioBlkGuest.Setup.defaults());
            h.disks.hold();
            g.submit(0, T_IN, 0, Harness.buffer(0), 512, true, 1);
            g.kick(0);
            h.awaitTrue(() -> h.disks.heldCount() == 1, "a request in flight");
            assertThatThrownBy(() -> h.await(h.machine.mainLoop().submit(() -> {
                h.device.saveState(new StateWriter());
                return null;
            }))).hasMessageContaining("requests in flight");
            h.disks.release();
        }
    }

    /** A state from a stopped source with one active queue, for the hostile-stream tests. */
    private static byte[] validState(Harness h) {
        h.start();
        VirtioBlkGuest g = h.guest(VirtioBlkGuest.Setup.defaults());
        Completions c = new Completions();
        g.submit(0, T_FLUSH, 0, 0, 0, false, 1);
        g.kick(0);
        c.awaitCount(h, g, 0, 1);
        h.await(h.machine.vmStop(RunState.PAUSED));
        return h.await(h.machine.mainLoop().submit(() -> {
            StateWriter w = new StateWriter();
            h.device.saveState(w);
            return w.toByteArray();
        }));
    }

    private static Throwable loadFails(Harness h, byte[] state) {
        try {
            h.await(h.machine.mainLoop().submit(() -> {
                h.device.loadState(new StateReader(h.device.stateName(), state), 1);
                return null;
            }));
        } catch (RuntimeException e) {
            Throwable t = e;
            while (t.getCause() != null && !(t instanceof MigrationStreamException)) {
                t = t.getCause();
            }
            return t;
        }
        throw new AssertionError("the state was accepted");
    }

    @Test
    void everyTruncationOfAStateIsRefusedNamingTheSection() {
        try (Harness h = machine(() -> new DeterministicScheduler(6), new TestDiskDriver(), RunState.PRELAUNCH, DEVICE)) {
            byte[] state = validState(h);
            for (int len = 0; len < state.length; len++) {
                Throwable t = loadFails(h, java.util.Arrays.copyOf(state, len));
                assertThat(t).as("truncated to %d bytes", len).isInstanceOf(MigrationStreamException.class)
                        .hasMessageContaining("virtio-blk:vd0");
            }
            byte[] longer = java.util.Arrays.copyOf(state, state.length + 1);
            assertThat(loadFails(h, longer)).hasMessageContaining("trailing");
            // and the intact state still loads
            h.await(h.machine.mainLoop().submit(() -> {
                h.device.loadState(new StateReader(h.device.stateName(), state), 1);
                return null;
            }));
        }
    }

    @Test
    void aStateForAnotherDiskOrLayoutIsRefusedNamingTheField() {
        try (Harness h = machine(() -> new DeterministicScheduler(7), new TestDiskDriver(), RunState.PRELAUNCH, DEVICE)) {
            byte[] state = validState(h);
            byte[] capacity = state.clone();
            capacity[7] ^= 1;
            assertThat(loadFails(h, capacity)).hasMessageContaining("capacity");
            byte[] queues = state.clone();
            queues[17] = 9;
            assertThat(loadFails(h, queues)).hasMessageContaining("num-queues");
        }
    }

    @Test
    void randomlyCorruptedStatesNeverLoadSomethingOutsideGuestRam() {
        try (Harness h = machine(() -> new DeterministicScheduler(8), new TestDiskDriver(), RunState.PRELAUNCH, DEVICE)) {
            byte[] state = validState(h);
            java.util.SplittableRandom rnd = new java.util.SplittableRandom(8);
            for (int i = 0; i < 300; i++) {
                byte[] bad = state.clone();
                int flips = rnd.nextInt(1, 4);
                for (int f = 0; f < flips; f++) {
                    bad[rnd.nextInt(bad.length)] ^= (byte) (1 << rnd.nextInt(8));
                }
                try {
                    h.await(h.machine.mainLoop().submit(() -> {
                        h.device.loadState(new StateReader(h.device.stateName(), bad), 1);
                        return null;
                    }));
                } catch (RuntimeException e) {
                    Throwable t = e;
                    while (t.getCause() != null && !(t instanceof MigrationStreamException)) {
                        t = t.getCause();
                    }
                    assertThat(t).as("corruption %d", i).isInstanceOf(MigrationStreamException.class);
                }
            }
            // whatever was accepted, the device state is consistent enough to reset and serve
            h.await(h.machine.mainLoop().submit(() -> {
                h.device.loadState(new StateReader(h.device.stateName(), state), 1);
                return null;
            }));
            h.start();
            VirtioBlkGuest g = h.guest(VirtioBlkGuest.Setup.defaults());
            Completions c = new Completions();
            g.submit(0, T_FLUSH, 0, 0, 0, false, 1);
            g.kick(0);
            c.awaitCount(h, g, 0, 1);
            assertThat(h.uncaughtErrors()).isZero();
        }
    }

    /**
     * A guest that writes a QueueNum above QueueNumMax into a queue it has not readied gets
     * DEVICE_NEEDS_RESET, and the register keeps a size the device can serve: before, it kept the
     * guest's value, which the destination of a migration then refused ("queue 0 size is 258, outside
     * 0..256"), so a guest could make its VM impossible to migrate (found by the fuzz target once it
     * migrated every program's device).
     */
    @Test
    void aQueueSizeAboveTheMaximumDoesNotStayInTheRegisterNorStopAMigration() {
        TestDiskDriver disks = new TestDiskDriver();
        Harness src = machine(() -> new DeterministicScheduler(21), disks, RunState.PRELAUNCH, DEVICE);
        Harness dst = machine(() -> new DeterministicScheduler(22), disks, RunState.INMIGRATE, DEVICE);
        try {
            src.start();
            VirtioMmioRegisters r = new VirtioMmioRegisters(src.machine.mmio(), src.device.slot().base());
            int max = r.read(VirtioMmioRegisters.QUEUE_NUM_MAX);
            r.write(VirtioMmioRegisters.STATUS, 3);
            r.write(VirtioMmioRegisters.QUEUE_SEL, 0);
            r.write(VirtioMmioRegisters.QUEUE_NUM, max + 2);
            assertThat(r.read(VirtioMmioRegisters.STATUS) & VirtioMmioRegisters.STATUS_NEEDS_RESET)
                    .as("DEVICE_NEEDS_RESET").isNotZero();
            src.await(src.machine.vmStop(RunState.FINISH_MIGRATE));
            load(dst, saveAndCopy(src, dst));
            dst.start();
            VirtioBlkGuest g = dst.guest(VirtioBlkGuest.Setup.defaults().withQueueSize(16));
            Completions c = new Completions();
            g.submit(0, T_FLUSH, 0, 0, 0, false, 1);
            g.kick(0);
            c.awaitCount(dst, g, 0, 1);
            assertThat(c.status(1)).isEqualTo(S_OK);
            assertThat(src.uncaughtErrors() + dst.uncaughtErrors()).isZero();
        } finally {
            src.close();
            dst.close();
        }
    }

    @SuppressWarnings("unused")
    private static Map<String, Object> statusOf(Harness h) {
        return h.machine.vcpus().getFirst().task().status();
    }
}
