package io.modemu.virtio.blk;

import io.modemu.aio.AioContext;
import io.modemu.aio.DeterministicScheduler;
import io.modemu.aio.LoopDriver;
import io.modemu.aio.ThreadLoopDriver;
import io.modemu.block.BlockBackend;
import io.modemu.guest.diskverify.DiskVerifyProgram;
import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.machine.Machine;
import io.modemu.machine.MachineEvent;
import io.modemu.machine.RunState;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * A machine with the virtio-blk device type, the test disk driver and the disk-verify program, on real
 * threads or on a seeded deterministic scheduler; waits that work the same under both (real threads:
 * poll with a generous hang guard; simulated: run the scheduler); and a guest-side driver the test
 * thread uses as a CPU would.
 */
final class Harness implements AutoCloseable {
    static final long RAM = 8L << 20;
    static final long DRIVER_STATE = Machine.RAM_BASE + 0x1_0000;
    static final long BUFFERS = Machine.RAM_BASE + 0x10_0000;
    private static final long HANG_GUARD_NANOS = TimeUnit.SECONDS.toNanos(30);

    final TestDiskDriver disks;
    final LoopDriver loops;
    final DeterministicScheduler scheduler;
    final Machine machine;
    final List<MachineEvent> events = new CopyOnWriteArrayList<>();
    VirtioBlkDevice device;

    private Harness(LoopDriver loops, TestDiskDriver disks, Machine.Builder builder) {
        this.loops = loops;
        this.scheduler = loops instanceof DeterministicScheduler d ? d : null;
        this.disks = disks;
        this.machine = builder.loopDriver(loops).contributions(Contributions.builder().add(new VirtioBlkDeviceType()).add(disks)
                .add(new DiskVerifyProgram()).build()).build();
        machine.addEventListener(events::add);
    }

    /** A machine on real threads with {@code iothreads} IOThreads named io0, io1, ... */
    static Harness threads(int iothreads) {
        return create(new ThreadLoopDriver(), new TestDiskDriver(), iothreads, RAM, RunState.PRELAUNCH);
    }

    /** A machine on a deterministic scheduler with {@code seed}. */
    static Harness simulated(long seed, int iothreads) {
        return create(new DeterministicScheduler(seed), new TestDiskDriver(), iothreads, RAM, RunState.PRELAUNCH);
    }

    static Harness create(LoopDriver loops, TestDiskDriver disks, int iothreads, long ram, RunState initial) {
        Machine.Builder b = Machine.builder().ram(ram).vcpus(1).initialState(initial);
        for (int i = 0; i < iothreads; i++) {
            b.iothread("io" + i);
        }
        return new Harness(loops, disks, b);
    }

    BlockBackend drive(String id, String options) {
        return machine.addDrive(id, Options.parse("-drive", "driver=testdisk" + (options.isEmpty() ? "" : "," + options), null));
    }

    VirtioBlkDevice device(String options) {
        device = (VirtioBlkDevice) machine.addDevice(Options.parse("-device", "virtio-blk-device," + options, "driver"));
        return device;
    }

    /** Starts the VM and waits until it runs. */
    void start() {
        await(machine.vmStart());
    }

    <T> T await(CompletableFuture<T> f) {
        if (scheduler != null) {
            return scheduler.await(f);
        }
        try {
            return f.get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError("future not done after 30 s (a hang)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new java.util.concurrent.CompletionException(e.getCause());
        }
    }

    /** Waits until {@code condition} holds; fails naming {@code what} (and the seed) if it never does. */
    void awaitTrue(BooleanSupplier condition, String what) {
        if (scheduler != null) {
            if (!scheduler.runUntil(condition, 2_000_000)) {
                throw new AssertionError("seed " + scheduler.seed() + ": " + what + " never happened (" + scheduler.steps() + " steps, "
                        + (scheduler.hasWork() ? "still busy" : "idle") + ")");
            }
            return;
        }
        long deadline = System.nanoTime() + HANG_GUARD_NANOS;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError(what + " never happened (waited 30 s)");
            }
            LockSupport.parkNanos(20_000);
        }
    }

    /** Lets the machine run for a while: some scheduler steps, or a short real sleep. */
    void idle() {
        if (scheduler != null) {
            scheduler.runUntilIdle(20_000);
        } else {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
        }
    }

    /** Brings the device up from the test thread, as a guest kernel would. */
    VirtioBlkGuest guest(VirtioBlkGuest.Setup setup) {
        long base = device.slot().base();
        VirtioBlkGuest.beginReset(machine.mmio(), base);
        awaitTrue(() -> VirtioBlkGuest.resetDone(machine.mmio(), base), "device reset");
        return VirtioBlkGuest.initialize(machine.memory(), machine.mmio(), base, DRIVER_STATE, setup);
    }

    /** Data buffer {@code i}: 8 KiB each from 1 MiB into RAM (896 of them). */
    static long buffer(int i) {
        if (i < 0 || BUFFERS + (i + 1L) * 0x2000 > Machine.RAM_BASE + RAM) {
            throw new IllegalArgumentException("buffer " + i + " is beyond guest RAM");
        }
        return BUFFERS + (long) i * 0x2000;
    }

    /** Every context of the machine. */
    List<AioContext> contexts() {
        List<AioContext> l = new ArrayList<>();
        l.add(machine.mainLoop());
        l.addAll(machine.iothreads().values());
        machine.vcpus().forEach(v -> l.add(v.context()));
        return l;
    }

    /** Errors that escaped into any event loop (each also logged); 0 unless something is broken. */
    long uncaughtErrors() {
        long n = 0;
        for (AioContext c : contexts()) {
            n += c.uncaughtErrors();
        }
        return n;
    }

    String firstUncaught() {
        for (AioContext c : contexts()) {
            if (c.firstUncaughtError() != null) {
                return c.name() + ": " + c.firstUncaughtError();
            }
        }
        return "none";
    }

    /** Stops the VM (draining the device) and closes the machine. */
    @Override
    public void close() {
        try {
            if (machine.isRunning()) {
                await(machine.vmStop(RunState.PAUSED));
            }
        } finally {
            machine.close();
        }
    }
}
