package io.modemu.migration.tcp.testbed;

import io.modemu.machine.GuestMemory;
import io.modemu.machine.Machine;
import io.modemu.machine.MachineEvent;
import io.modemu.machine.RamBlock;
import io.modemu.machine.RunState;
import io.modemu.migration.LiveMigration;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
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
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;

/**
 * A machine under test with its {@link LiveMigration}: guest RAM, optionally a {@link TestBlockDevice}
 * on an IOThread over a drive, and the {@link DiskWriter} guest program on vCPU 0. Source and
 * destination of a migration are built from the same {@link Spec} (as QEMU needs the same command
 * line on both ends), the destination with {@code incoming}.
 *
 * <p>Switching the tests to virtio-blk and disk-verify means changing {@link #create} (device type,
 * guest program and its options) and {@link DiskWriter.State} (where the program keeps its counters).
 */
public final class TestVm implements AutoCloseable {
    /** What to build. Mutable, copied by {@link #copy()}. */
    public static final class Spec {
        public String name = "vm";
        public long ram = 16L << 20;
        /** A raw image shared by source and destination (shared storage), or null for null-co. */
        public Path disk;
        public long nullLatencyNs = 1_000_000;
        public boolean device = true;
        public boolean guest = true;
        public boolean iothread = true;
        public boolean incoming;
        public Map<String, String> guestOptions = new LinkedHashMap<>(Map.of("verify", "on", "dirty-pages", "4"));
        /** What the machine finds transports, drivers and devices in; null for {@link BuiltIn#contributions}. */
        public Contributions contributions;

        public Spec copy() {
            Spec s = new Spec();
            s.name = name;
            s.ram = ram;
            s.disk = disk;
            s.nullLatencyNs = nullLatencyNs;
            s.device = device;
            s.guest = guest;
            s.iothread = iothread;
            s.incoming = incoming;
            s.guestOptions = new LinkedHashMap<>(guestOptions);
            s.contributions = contributions;
            return s;
        }

        /** The same machine, as a destination. */
        public Spec destination(String n) {
            Spec s = copy();
            s.name = n;
            s.incoming = true;
            return s;
        }
    }

    public final Machine machine;
    public final LiveMigration migration;
    public final TestBlockDevice device;
    public final List<MachineEvent> events = new CopyOnWriteArrayList<>();
    private final Spec spec;

    private TestVm(Spec spec, Machine machine, TestBlockDevice device) {
        this.spec = spec;
        this.machine = machine;
        this.migration = new LiveMigration(machine);
        this.device = device;
        machine.addEventListener(events::add);
    }

    /** Adds the test bed's device type and guest program. */
    public static Contributions.Builder addTestBed(Contributions.Builder b) {
        return b.add(TestBlockDevice.TYPE).add(new DiskWriter());
    }

    public static TestVm create(Spec spec) {
        Machine.Builder b = Machine.builder().name(spec.name).ram(spec.ram)
                .contributions(spec.contributions != null ? spec.contributions : BuiltIn.contributions()).vcpus(1)
                .initialState(spec.incoming ? RunState.INMIGRATE : RunState.PRELAUNCH);
        if (spec.iothread) {
            b.iothread("io0");
        }
        Machine m = b.build();
        try {
            TestBlockDevice dev = null;
            if (spec.device) {
                Map<String, String> drive = new LinkedHashMap<>();
                if (spec.disk != null) {
                    drive.put("driver", "file");
                    drive.put("filename", spec.disk.toString());
                } else {
                    drive.put("driver", "null-co");
                    drive.put("size", "64M");
                    drive.put("latency-ns", Long.toString(spec.nullLatencyNs));
                }
                m.addDrive("d0", Options.of("-drive", drive));
                Map<String, String> dev0 = new LinkedHashMap<>(Map.of("driver", TestBlockDevice.TYPE_NAME, "id", "disk0", "drive", "d0"));
                if (spec.iothread) {
                    dev0.put("iothread", "io0");
                }
                dev = (TestBlockDevice) m.addDevice(Options.of("-device", dev0));
            }
            if (spec.guest && spec.device) {
                Map<String, String> opts = new LinkedHashMap<>(spec.guestOptions);
                if (spec.disk == null) {
                    opts.put("verify", "off");
                }
                m.loadGuest(DiskWriter.NAME, Options.of("-guest", opts));
            }
            return new TestVm(spec, m, dev);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
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

    /** Starts (or resumes) the VM and waits. */
    public void start() {
        machine.vmStart().join();
    }

    /** Fills the guest's free area (from 1 MiB) with random bytes, as writes the dirty bitmap sees. */
    public void fillRandom(long seed) {
        RamBlock b = machine.memory().blocks().getFirst();
        long from = DiskWriter.DIRTY_AREA;
        MemorySegment ram = b.segment();
        SplittableRandom r = new SplittableRandom(seed);
        for (long off = from; off + 8 <= ram.byteSize(); off += 8) {
            ram.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, off, r.nextLong());
        }
        b.dirty().mark(from, ram.byteSize() - from);
    }

    public DiskWriter.State guest() {
        return DiskWriter.State.read(machine.memory());
    }

    /** Waits until the guest has seen {@code more} further completions (a live guest and a live disk). */
    public DiskWriter.State awaitGuestProgress(long more, Duration timeout) {
        long target = guest().completed() + more;
        await(() -> guest().completed() >= target, timeout, () -> "machine '" + machine.name() + "': the guest did not complete " + more
                + " more requests; it is at " + guest() + ", run state " + machine.runState());
        return guest();
    }

    /** Polls {@code condition} every few milliseconds up to {@code timeout}. */
    public static void await(BooleanSupplier condition, Duration timeout, java.util.function.Supplier<String> message) {
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
     * Checks the disk image against the guest's record of acknowledged writes: every block holds the
     * pattern of the last write the guest saw complete, or of a write that completed and the guest has
     * not looked at yet. Call with the VM stopped (its I/O drained).
     *
     * @return a description of the first bad block, or null when every acknowledged write is there
     */
    public String checkDisk() throws IOException {
        if (spec.disk == null) {
            throw new IllegalStateException("no disk image: the drive is null-co");
        }
        GuestMemory m = machine.memory();
        long base = m.blocks().getFirst().base();
        long blocks = Long.parseLong(spec.guestOptions.getOrDefault("blocks", "1024"));
        boolean verify = !"off".equals(spec.guestOptions.getOrDefault("verify", "on"));
        int ring = Integer.parseInt(spec.guestOptions.getOrDefault("ring", "64"));
        DiskWriter.State s = guest();
        long[] expected = new long[(int) blocks];
        for (int b = 0; b < blocks; b++) {
            expected[b] = m.readU64(base + DiskWriter.ACKS + b * 8L);
        }
        for (long seq = s.doneSeq(); seq < s.nextSeq(); seq++) {
            long e = base + DiskWriter.RING + 8 + ((seq - 1) % ring) * TestBlockDevice.ENTRY;
            if (m.readU8(e + 1) == 1 && m.readU8(e) == TestBlockDevice.OP_WRITE) {
                expected[(int) DiskWriter.blockOf(seq, blocks, verify)] = seq;
            }
        }
        ByteBuffer buf = ByteBuffer.allocate(DiskWriter.BLOCK).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(spec.disk, StandardOpenOption.READ)) {
            for (int b = 0; b < blocks; b++) {
                buf.clear();
                ch.read(buf, (long) b * DiskWriter.BLOCK);
                for (int i = 0; i < DiskWriter.BLOCK / 8; i++) {
                    if (buf.getLong(i * 8) != DiskWriter.pattern(b, expected[b], i)) {
                        return "block " + b + " does not hold the write with sequence number " + expected[b] + " (word " + i + ")";
                    }
                }
            }
        }
        return null;
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

    /** Cancels any migration, pauses a running VM (a step must not run while RAM goes away), closes the machine. */
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
    }
}
