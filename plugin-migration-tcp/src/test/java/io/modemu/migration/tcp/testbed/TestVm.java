package io.modemu.migration.tcp.testbed;

import io.modemu.block.BlockBackend;
import io.modemu.guest.GuestTask;
import io.modemu.machine.GuestMemory;
import io.modemu.machine.Machine;
import io.modemu.machine.MachineEvent;
import io.modemu.machine.RamBlock;
import io.modemu.machine.RunState;
import io.modemu.machine.VmStateHandler;
import io.modemu.migration.LiveMigration;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * A machine under test with its {@link LiveMigration}, built from the real parts: guest RAM (anonymous,
 * or a shared mapping of a file), an IOThread, a {@code virtio-blk-device} on that IOThread over a raw
 * image (the stock {@code file} driver, or {@link SlowFileDriver} for a slow disk), and the stock
 * {@code disk-verify} guest program on vCPU 0, which writes, reads back and verifies stamped blocks
 * while it dirties RAM. Source and destination of a migration are built from the same {@link Spec}
 * (as QEMU needs the same command line on both ends), the destination with {@code incoming}.
 *
 * <p>What the guest reports comes from its task's status, as the monitor's {@code query-guest} reads
 * it ({@link #guest()}); whether the disk holds every write the guest saw acknowledged is checked
 * against disk-verify's state in guest RAM ({@link #checkDisk()}).
 */
public final class TestVm implements AutoCloseable {
    public static final String DRIVE = "d0";
    public static final String DEVICE = "disk0";
    public static final String DEVICE_TYPE = "virtio-blk-device";
    public static final String GUEST = "disk-verify";
    /** Where {@link #fillRandom} starts: disk-verify's state page, driver rings and request buffers lie below. */
    public static final long RANDOM_FROM = 1L << 20;
    /**
     * The priority of the test's own VM state handler: above virtio-blk's, so that it stops first, with the
     * vCPUs paused and the device's requests still in flight.
     */
    static final int OBSERVER_PRIORITY = 10;

    /** What to build. Mutable, copied by {@link #copy()}. */
    public static final class Spec {
        public String name = "vm";
        public long ram = 16L << 20;
        /** Guest RAM as a shared mapping of this file (created by the machine, deleted on close), or null for anonymous RAM. */
        public Path ramFile;
        /** A raw image shared by source and destination (shared storage); required with a device. */
        public Path disk;
        /** A delay per disk request ({@link SlowFileDriver}), 0 for the stock file driver. */
        public long diskLatencyNs;
        public boolean device = true;
        public boolean guest = true;
        public boolean iothread = true;
        public boolean incoming;
        /** disk-verify's options. */
        public Map<String, String> guestOptions = new LinkedHashMap<>(Map.of("blocks", "256", "queue-depth", "16", "dirty-rate", "32M", "dirty-size", "2M"));
        /** What the machine finds transports, drivers, devices and guest programs in. */
        public Contributions contributions;

        public Spec copy() {
            Spec s = new Spec();
            s.name = name;
            s.ram = ram;
            s.ramFile = ramFile;
            s.disk = disk;
            s.diskLatencyNs = diskLatencyNs;
            s.device = device;
            s.guest = guest;
            s.iothread = iothread;
            s.incoming = incoming;
            s.guestOptions = new LinkedHashMap<>(guestOptions);
            s.contributions = contributions;
            return s;
        }

        /** The same machine, as a destination (with anonymous RAM: a transport's fixture may give it a file). */
        public Spec destination(String n) {
            Spec s = copy();
            s.name = n;
            s.incoming = true;
            s.ramFile = null;
            return s;
        }
    }

    /** What disk-verify reports (its task's status, as {@code query-guest} shows it). */
    public record GuestStatus(String phase, long generation, long verified, long failed, long ioErrors, long writes, long reads) {
        /** Requests the guest saw complete. */
        public long completed() {
            return writes + reads;
        }

        static GuestStatus of(Map<String, Object> s) {
            return new GuestStatus(String.valueOf(s.get("phase")), num(s, "generation"), num(s, "verified"), num(s, "failed"), num(s, "io-errors"),
                    num(s, "writes"), num(s, "reads"));
        }

        private static long num(Map<String, Object> s, String key) {
            return s.get(key) instanceof Number n ? n.longValue() : 0;
        }
    }

    public final Machine machine;
    public final LiveMigration migration;
    public final List<MachineEvent> events = new CopyOnWriteArrayList<>();
    private final Spec spec;
    private final GuestTask guest;
    private volatile int inFlightAtLastStop = -1;
    private volatile Consumer<TestVm> onStop;

    private TestVm(Spec spec, Machine machine, GuestTask guest) {
        this.spec = spec;
        this.machine = machine;
        this.guest = guest;
        this.migration = new LiveMigration(machine);
        machine.addEventListener(events::add);
    }

    public static TestVm create(Spec spec) {
        if (spec.contributions == null) {
            throw new IllegalArgumentException("spec '" + spec.name + "': no contributions (BuiltIn.contributions(transport), or a plugin host's)");
        }
        if (spec.device && spec.disk == null) {
            throw new IllegalArgumentException("spec '" + spec.name + "': the disk needs an image (disk-verify verifies what it reads back)");
        }
        Machine.Builder b = Machine.builder().name(spec.name).ram(spec.ram).contributions(spec.contributions).vcpus(1)
                .initialState(spec.incoming ? RunState.INMIGRATE : RunState.PRELAUNCH);
        if (spec.ramFile != null) {
            b.ramFile(spec.ramFile);
        }
        if (spec.iothread) {
            b.iothread("io0");
        }
        Machine m = b.build();
        try {
            if (spec.device) {
                Map<String, String> drive = new LinkedHashMap<>();
                drive.put("driver", spec.diskLatencyNs > 0 ? SlowFileDriver.NAME : "file");
                drive.put("filename", spec.disk.toString());
                if (spec.diskLatencyNs > 0) {
                    drive.put("latency-ns", Long.toString(spec.diskLatencyNs));
                }
                m.addDrive(DRIVE, Options.of("-drive", drive));
                Map<String, String> dev = new LinkedHashMap<>(Map.of("driver", DEVICE_TYPE, "id", DEVICE, "drive", DRIVE));
                if (spec.iothread) {
                    dev.put("iothread", "io0");
                }
                m.addDevice(Options.of("-device", dev));
            }
            GuestTask task = spec.guest ? m.loadGuest(GUEST, Options.of("-guest", spec.guestOptions)) : null;
            TestVm vm = new TestVm(spec, m, task);
            m.addVmStateHandler("test-observer", OBSERVER_PRIORITY, vm.observer());
            return vm;
        } catch (RuntimeException e) {
            m.close();
            deleteRamFile(spec);
            throw e;
        }
    }

    /** Stops before the device: records the requests it will have to drain and runs the test's hook. Main loop. */
    private VmStateHandler observer() {
        return new VmStateHandler() {
            @Override
            public CompletionStage<Void> stop(RunState newState) {
                inFlightAtLastStop = spec.device ? drive().inFlight() : -1;
                Consumer<TestVm> hook = onStop;
                if (hook != null) {
                    hook.accept(TestVm.this);
                }
                return CompletableFuture.completedFuture(null);
            }

            @Override
            public CompletionStage<Void> start() {
                return CompletableFuture.completedFuture(null);
            }
        };
    }

    /** A fresh zero-filled raw image of {@code size} bytes. */
    public static Path newDisk(Path dir, long size) throws IOException {
        Path p = Files.createTempFile(dir, "disk", ".img");
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.truncate(0);
            ch.write(ByteBuffer.wrap(new byte[1]), size - 1);
        }
        return p;
    }

    public Spec spec() {
        return spec;
    }

    /** The disk's block backend. */
    public BlockBackend drive() {
        return machine.blockBackend(DRIVE);
    }

    /** Requests in flight on the disk's backend when the last stop reached the device (main loop, vCPUs paused); -1 before any stop. */
    public int inFlightAtLastStop() {
        return inFlightAtLastStop;
    }

    /** Runs {@code hook} on the main loop each time a stop begins, before the device stops (a test's window into the completion of a migration). */
    public void onStop(Consumer<TestVm> hook) {
        this.onStop = hook;
    }

    /** Starts (or resumes) the VM and waits. */
    public void start() {
        machine.vmStart().join();
    }

    /** Pauses the VM and waits: the guest stops, the disk's requests drain. */
    public void pause() {
        machine.vmStop(RunState.PAUSED).join();
    }

    /**
     * Fills guest RAM from {@link #RANDOM_FROM} up to three quarters of it with random bytes, as writes the
     * dirty bitmap sees, and leaves the last quarter zero (pages a migration sends as zero pages). Call
     * before the guest starts: what disk-verify keeps there (its request buffers, the area it dirties) it
     * writes before it reads.
     */
    public void fillRandom(long seed) {
        RamBlock b = machine.memory().blocks().getFirst();
        MemorySegment ram = b.segment();
        long end = ram.byteSize() / 4 * 3;
        SplittableRandom r = new SplittableRandom(seed);
        for (long off = RANDOM_FROM; off + 8 <= end; off += 8) {
            ram.set(ValueLayout.JAVA_LONG_UNALIGNED, off, r.nextLong());
        }
        b.dirty().mark(RANDOM_FROM, end - RANDOM_FROM);
    }

    /** What the guest reports now. */
    public GuestStatus guest() {
        if (guest == null) {
            throw new IllegalStateException("machine '" + machine.name() + "' has no guest program");
        }
        return GuestStatus.of(guest.status());
    }

    /** Waits until the guest has seen {@code more} further requests complete (a live guest and a live disk). */
    public GuestStatus awaitGuestProgress(long more, Duration timeout) {
        long target = guest().completed() + more;
        await(() -> guest().completed() >= target, timeout, () -> "machine '" + machine.name() + "': the guest did not complete " + more
                + " more requests; it is at " + guest() + ", run state " + machine.runState());
        return guest();
    }

    /** Waits until the guest has verified {@code more} blocks more than it has now. */
    public GuestStatus awaitGuestVerified(long more, Duration timeout) {
        long target = guest().verified() + more;
        await(() -> guest().verified() >= target, timeout, () -> "machine '" + machine.name() + "': the guest did not verify " + more
                + " more blocks; it is at " + guest() + ", run state " + machine.runState());
        return guest();
    }

    /** Polls {@code condition} every few milliseconds up to {@code timeout}. */
    public static void await(BooleanSupplier condition, Duration timeout, Supplier<String> message) {
        long end = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError(message.get());
            }
            try {
                Thread.sleep(2);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted");
            }
        }
    }

    /** The first offset where the two machines' RAM differs, or -1 when it is equal (block by block). */
    public static long ramMismatch(Machine a, Machine b) {
        List<RamBlock> x = a.memory().blocks();
        List<RamBlock> y = b.memory().blocks();
        if (x.size() != y.size()) {
            return 0;
        }
        for (int i = 0; i < x.size(); i++) {
            long m = x.get(i).segment().mismatch(y.get(i).segment());
            if (m >= 0) {
                return m;
            }
        }
        return -1;
    }

    /**
     * Checks the disk image against disk-verify's state in this machine's RAM: every write the guest saw
     * acknowledged is there, every outstanding one wholly there or not at all, nothing else changed (see
     * {@code DiskVerifyImageCheck}). The VM must not run (a stopped VM has drained its requests).
     *
     * @return what is wrong with the first bad block, or null when the disk holds every acknowledged write
     */
    public String checkDisk() throws IOException {
        if (machine.isRunning()) {
            throw new IllegalStateException("machine '" + machine.name() + "' runs: stop it first, its requests would still be landing");
        }
        try (FileChannel ch = FileChannel.open(spec.disk, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            MemorySegment image = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return (String) imageCheck().invoke(machine.memory(), image);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * disk-verify's own image check, found through the class loader of the program that runs here: in a
     * process started by {@link MigrationLauncher} that is the plugin's module layer, which code on the
     * class path cannot name.
     */
    private MethodHandle imageCheck() {
        if (guest == null) {
            throw new IllegalStateException("machine '" + machine.name() + "' has no guest program: nothing to check the disk against");
        }
        try {
            Class<?> c = Class.forName("io.modemu.guest.diskverify.DiskVerifyImageCheck", true, guest.getClass().getClassLoader());
            return MethodHandles.publicLookup().findStatic(c, "check", MethodType.methodType(String.class, GuestMemory.class, MemorySegment.class));
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("the guest program " + guest.getClass().getName() + " has no DiskVerifyImageCheck beside it", e);
        }
    }

    /**
     * The names of the {@code MIGRATION} statuses this machine emitted, in order, once the last one is
     * final (events reach listeners through the main loop, shortly after the status changed).
     */
    public List<String> migrationStatuses() {
        await(() -> {
            List<String> s = statusesNow();
            return !s.isEmpty() && List.of("completed", "failed", "cancelled").contains(s.getLast());
        }, Duration.ofSeconds(10), () -> "no final MIGRATION event: " + statusesNow());
        return statusesNow();
    }

    private List<String> statusesNow() {
        List<String> out = new ArrayList<>();
        for (MachineEvent e : events) {
            if (e.name().equals("MIGRATION")) {
                out.add((String) e.data().get("status"));
            }
        }
        return out;
    }

    /** Cancels any migration, pauses a running VM (a step must not run while RAM goes away), closes the machine, deletes its RAM file. */
    @Override
    public void close() {
        migration.close();
        if (machine.isRunning()) {
            try {
                machine.vmStop(RunState.PAUSED).get(30, java.util.concurrent.TimeUnit.SECONDS);
            } catch (Exception e) {
                // closing anyway
            }
        }
        machine.close();
        deleteRamFile(spec);
    }

    private static void deleteRamFile(Spec spec) {
        if (spec.ramFile != null) {
            try {
                Files.deleteIfExists(spec.ramFile);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
