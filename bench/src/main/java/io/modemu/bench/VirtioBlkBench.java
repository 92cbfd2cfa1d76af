package io.modemu.bench;

import io.modemu.aio.AioContext;
import io.modemu.block.BlockBackend;
import io.modemu.guest.GuestTask;
import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * Benchmark {@code virtio-blk}: 4 KiB random reads at queue depth 32 through the guest-side virtio-blk
 * driver (a vCPU) and the device (an IOThread dataplane), against (a) the null driver and (b) a
 * page-cached raw file; next to the same reads issued straight to the block backend, in the same run.
 * Prints one {@code key=value} line per figure on standard output.
 *
 * <p>The reference and the device path run by turns in half-second windows (see {@link #compare}), so
 * that a shared, noisy host weighs on both alike.
 *
 * <p>Options: {@code --seconds=N} (measured time per path, default 5), {@code --warmup=N} (default 3),
 * {@code --qd=N} (32), {@code --bs=N} (4096), {@code --file-size=N} (MiB, 256), {@code --file-aio=threads|inline}
 * (inline), {@code --null-options=...} (extra null-co options), {@code --only=null|file|one-core},
 * {@code --one-core=off} (skip the one-core figures), {@code --turns} (each measured turn's IOPS and IOThread time per
 * request on standard error), and the guest's polling: {@code --poll=D} (how long it
 * keeps polling after the last completion before it waits for an interrupt, default 50us; 0: interrupts
 * only, as a Linux guest without poll queues) and {@code --poll-interval=D} (the pause between two polls,
 * default 5us; 0: poll without pausing).
 *
 * <p>{@code --floor=PATH} (given by {@code bench/run} when it could build {@code bench/src/main/c/ring_floor.c})
 * runs the split-ring floor ({@link RingFloor}) between the file turns and prints what it reached next to
 * the device's ratio; {@code --floor=off} or no option: not run.
 *
 * <p>{@code --ab=PROPERTY[=VALUE]} runs an A/B experiment instead (see {@link #abCompare}): the file
 * (or, with {@code --only=null}, the null) reference next to two device machines, the second created
 * with a system property set, by turns in the same run.
 */
public final class VirtioBlkBench {
    private static final long RAM = 64L << 20;
    private static final long BUFFERS = Machine.RAM_BASE + (32L << 20);
    /** How long each turn of a path lasts (the floor's turns too). */
    private static final long WINDOW_NANOS = 500_000_000L;

    private final int seconds;
    private final int warmup;
    private final int qd;
    private final int bs;
    /** The guest program's polling options, as {@code -guest} takes them. */
    private final String guestPolling;
    private final PrintStream out;
    /** {@code --turns}: print every measured turn on standard error. */
    private final boolean printTurns;
    /** {@code --floor}: the split-ring floor's binary, or null. */
    private Path floorBinary;

    private VirtioBlkBench(int seconds, int warmup, int qd, int bs, String guestPolling, boolean printTurns, PrintStream out) {
        this.printTurns = printTurns;
        this.guestPolling = guestPolling;
        this.seconds = seconds;
        this.warmup = warmup;
        this.qd = qd;
        this.bs = bs;
        this.out = out;
    }

    public static void main(String[] args) throws Exception {
        int seconds = 5;
        int warmup = 3;
        int qd = 32;
        int bs = 4096;
        long fileMiB = 256;
        String fileAio = "inline";
        String nullOptions = "";
        String only = "";
        String poll = "50us";
        String pollInterval = "5us";
        boolean oneCore = true;
        boolean turns = false;
        String ab = "";
        String floor = "off";
        for (String a : args) {
            String[] kv = a.replaceFirst("^--", "").split("=", 2);
            String v = kv.length > 1 ? kv[1] : "";
            switch (kv[0]) {
                case "seconds" -> seconds = Integer.parseInt(v);
                case "warmup" -> warmup = Integer.parseInt(v);
                case "qd" -> qd = Integer.parseInt(v);
                case "bs" -> bs = Integer.parseInt(v);
                case "file-size" -> fileMiB = Long.parseLong(v);
                case "file-aio" -> fileAio = v;
                case "null-options" -> nullOptions = v;
                case "only" -> only = v;
                case "poll" -> poll = v;
                case "poll-interval" -> pollInterval = v;
                case "one-core" -> oneCore = !v.equals("off");
                case "ab" -> ab = v;
                case "floor" -> floor = v;
                case "turns" -> turns = !v.equals("off");
                default -> throw new IllegalArgumentException("unknown option '" + a + "' (see the class comment of " + VirtioBlkBench.class.getName() + ")");
            }
        }
        VirtioBlkBench b = new VirtioBlkBench(seconds, warmup, qd, bs, "poll=" + poll + ",poll-interval=" + pollInterval, turns, System.out);
        b.line("bench", "virtio-blk");
        b.line("qd", qd);
        b.line("bs", bs);
        b.line("seconds", seconds);
        b.line("guest_poll", poll);
        b.line("guest_poll_interval", pollInterval);
        b.line("loop_spin", Integer.getInteger("modemu.loop.spin", 2_000));
        b.line("cpus", Runtime.getRuntime().availableProcessors());
        b.line("java", System.getProperty("java.version"));
        if (!floor.equals("off") && !floor.isEmpty()) {
            b.floorBinary = Path.of(floor);
            if (!Files.isExecutable(b.floorBinary)) {
                throw new IllegalArgumentException("--floor=" + floor + ": not an executable file");
            }
        }
        if (!ab.isEmpty()) {
            Path file = Files.createTempFile("modemu-bench-", ".img");
            try {
                fill(file, fileMiB << 20);
                String drive = only.equals("null") ? "driver=null-co,size=1G"
                        : "driver=file,filename=" + file.toString().replace(",", ",,") + ",aio=" + fileAio;
                b.abCompare(only.equals("null") ? "null" : "file", drive, ab);
            } finally {
                Files.deleteIfExists(file);
            }
            return;
        }
        if (only.equals("one-core")) {
            b.oneCore("null", "driver=null-co,size=1G" + (nullOptions.isEmpty() ? "" : "," + nullOptions));
            Path file = Files.createTempFile("modemu-bench-", ".img");
            try {
                fill(file, fileMiB << 20);
                b.oneCore("file", "driver=file,filename=" + file.toString().replace(",", ",,") + ",aio=inline");
            } finally {
                Files.deleteIfExists(file);
            }
            return;
        }
        if (!only.equals("file")) {
            String drive = "driver=null-co,size=1G" + (nullOptions.isEmpty() ? "" : "," + nullOptions);
            b.line("null_drive", drive);
            Pair p = b.compare("null", drive, null);
            double backend = p.backend();
            double device = p.device();
            b.line("null_backend_iops", Math.round(backend));
            b.line("null_iops", Math.round(device));
            b.line("null_ratio", String.format(Locale.ROOT, "%.3f", device / backend));
            if (oneCore) {
                b.oneCore("null", drive);
            }
        }
        if (!only.equals("null")) {
            Path file = Files.createTempFile("modemu-bench-", ".img");
            try {
                fill(file, fileMiB << 20);
                String drive = "driver=file,filename=" + file.toString().replace(",", ",,") + ",aio=" + fileAio;
                b.line("file_drive", "driver=file,size=" + fileMiB + "M,aio=" + fileAio + " (page-cached)");
                Pair p = b.compare("file", drive, file);
                double backend = p.backend();
                double device = p.device();
                b.line("file_backend_iops", Math.round(backend));
                b.line("file_iops", Math.round(device));
                b.line("file_ratio", String.format(Locale.ROOT, "%.3f", device / backend));
                if (!Double.isNaN(p.floorRatio())) {
                    b.line("file_ratio_to_floor", String.format(Locale.ROOT, "%.3f", device / backend / p.floorRatio()));
                }
                if (fileAio.equals("inline") && oneCore) {
                    b.oneCore("file", drive);
                }
            } finally {
                Files.deleteIfExists(file);
            }
        }
    }

    private void line(String key, Object value) {
        out.println(key + "=" + value);
        out.flush();
    }

    /** Writes the image and reads it once, so that it sits in the page cache. */
    private static void fill(Path file, long bytes) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.READ)) {
            ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
            for (int i = 0; i < buf.capacity(); i++) {
                buf.put(i, (byte) (i * 31));
            }
            for (long pos = 0; pos < bytes; pos += buf.capacity()) {
                buf.clear();
                while (buf.hasRemaining()) {
                    ch.write(buf, pos + buf.position());
                }
            }
            ch.force(false);
            for (long pos = 0; pos < bytes; pos += buf.capacity()) {
                buf.clear();
                ch.read(buf, pos);
            }
        }
    }

    private Machine machine(int vcpus, io.modemu.aio.LoopDriver loops) {
        return machine(vcpus, "io0", loops);
    }

    private Machine machine(int vcpus, String iothread, io.modemu.aio.LoopDriver loops) {
        return Machine.builder().ram(RAM).iothread(iothread).vcpus(vcpus).loopDriver(loops).contributions(Contributions.builder()
                .add(provider(io.modemu.block.BlockDriver.class, "null-co")).add(provider(io.modemu.block.BlockDriver.class, "file"))
                .add(provider(io.modemu.device.DeviceType.class, "virtio-blk-device")).add(new RandomReadProgram()).build())
                .build();
    }

    /** What {@link #compare} measured: IOPS of each path, and the split-ring floor's ratio (NaN if not run). */
    private record Pair(double backend, double device, double floorRatio) {
    }

    /** The split-ring floor's turns of one kind: IOPS summed (every turn lasts as long). */
    private static final class FloorTally {
        double reference;
        double model;
        int turns;

        void add(RingFloor.Turn t) {
            reference += t.referenceIops();
            model += t.modelIops();
            turns++;
        }

        double ratio() {
            return model / reference;
        }
    }

    /** Running totals of one path over its measured windows: completions, wall time, CPU time of its threads. */
    private static final class Tally {
        long completions;
        long nanos;
        long iothreadCpu;
        long vcpuCpu;
        /** Context switches of the IOThread (voluntary and not): see {@link #contextSwitches}. */
        long iothreadSwitches;
        int turns;

        void add(long c, long t, long[] cpu0, long[] cpu1) {
            completions += c;
            nanos += t;
            iothreadCpu += cpu1[0] - cpu0[0];
            vcpuCpu += cpu1[1] - cpu0[1];
            iothreadSwitches += cpu1[2] - cpu0[2];
            turns++;
        }

        void add(Tally o) {
            completions += o.completions;
            nanos += o.nanos;
            iothreadCpu += o.iothreadCpu;
            vcpuCpu += o.vcpuCpu;
            iothreadSwitches += o.iothreadSwitches;
            turns += o.turns;
        }

        double iops() {
            return completions * 1e9 / nanos;
        }
    }

    /**
     * IOPS of the same random reads issued straight to the block backend (no device, no guest: the
     * reference) and issued by the guest program through the device, each on a machine of its own with
     * the drive on an IOThread. The two run by turns, in windows of about half a second (the first
     * tenth of each window not counted), for {@code seconds} each: both see the same machine, whatever
     * else it does meanwhile, so the ratio holds even where the absolute figures drift.
     */
    private Pair compare(String label, String drive, Path floorFile) throws Exception {
        try (RingFloor floor = floorBinary == null || floorFile == null ? null
                        : RingFloor.start(floorBinary, floorFile, qd, bs, WINDOW_NANOS / 1_000_000);
                Machine mb = machine(0, "iob", new io.modemu.aio.ThreadLoopDriver());
                Machine md = machine(1, "iod", new io.modemu.aio.ThreadLoopDriver())) {
            BlockBackend be = mb.addDrive("d0", Options.parse("-drive", drive, null));
            mb.onMainLoop(() -> be.setAioContext(mb.iothread("iob"))).toCompletableFuture().get(10, TimeUnit.SECONDS);
            DirectReader reader = new DirectReader(be, mb.memory(), BUFFERS, qd, bs);
            md.addDrive("d0", Options.parse("-drive", drive, null));
            md.addDevice(Options.parse("-device", "virtio-blk-device,drive=d0,iothread=iod,queue-size=256", "driver"));
            RandomReadProgram.Task task = (RandomReadProgram.Task) md.loadGuest(RandomReadProgram.NAME,
                    Options.parse("-guest", "qd=" + qd + ",bs=" + bs + "," + guestPolling, null));
            long[] backendThreads = {-1, -1, -1};
            long[] deviceThreads = {-1, -1, -1};
            Tally backend = new Tally();
            Tally device = new Tally();
            long window = WINDOW_NANOS;
            long settle = 50_000_000L;
            int windows = (int) Math.max(1, seconds * 1_000_000_000L / (window - settle));
            int warmups = (int) Math.max(1, warmup * 1_000_000_000L / window / 2);
            long s0 = 0;
            long z0 = 0;
            long e0 = 0;
            long n0 = 0;
            // each measured turn also counted by where the host had the two processors: probed before and after it
            Tally[] backendBy = {new Tally(), new Tally()};
            Tally[] deviceBy = {new Tally(), new Tally()};
            java.util.List<Double> probes = new java.util.ArrayList<>();
            // each window's device turn against its backend turn (the two run back to back): how far the host's noise
            // spreads the ratio from one half-second to the next
            java.util.List<Double> windowRatios = new java.util.ArrayList<>();
            FloorTally floorAll = new FloorTally();
            FloorTally[] floorBy = {new FloorTally(), new FloorTally()};
            CrossCpuProbe.sample();
            double probe = CrossCpuProbe.sample();
            double windowIops = 0;
            for (int w = -warmups; w < windows; w++) {
                if (w == 0) {
                    s0 = task.steps;
                    z0 = task.sleeps;
                    e0 = task.emptyPolls;
                    n0 = task.notifies;
                }
                // ABBA order: neither path always runs right after the other
                for (int k = 0; k < 2; k++) {
                    boolean deviceTurn = (w & 1) == k;
                    Tally turn = w >= 0 ? new Tally() : null;
                    if (deviceTurn) {
                        md.vmStart().get(30, TimeUnit.SECONDS);
                        if (deviceThreads[0] < 0) {
                            deviceThreads = new long[] {threadId("modemu-iod"), threadId("modemu-vcpu0"), nativeTid("modemu-iod")};
                        }
                        runWindow(turn, task::completed, deviceThreads, settle, window);
                        md.vmStop(RunState.PAUSED).get(30, TimeUnit.SECONDS);
                    } else {
                        reader.resume();
                        if (backendThreads[0] < 0) {
                            backendThreads = new long[] {threadId("modemu-iob"), -1, nativeTid("modemu-iob")};
                        }
                        runWindow(turn, reader::completed, backendThreads, settle, window);
                        reader.pause();
                        while (reader.inFlight() > 0) {
                            Thread.sleep(1);
                        }
                    }
                    double before = probe;
                    probe = CrossCpuProbe.sample();
                    if (turn != null) {
                        if (printTurns) {
                            System.err.printf(Locale.ROOT, "turn %s window %d: %s %.0f IOPS, IOThread %.0f ns per request%n", label, w,
                                    deviceTurn ? "device" : "backend", turn.iops(), (double) turn.iothreadCpu / turn.completions);
                        }
                        if (k == 1) {
                            double other = windowIops;
                            windowRatios.add(deviceTurn ? turn.iops() / other : other / turn.iops());
                        } else {
                            windowIops = turn.iops();
                        }
                        (deviceTurn ? device : backend).add(turn);
                        probes.add(probe);
                        int where = placement(before, probe);
                        if (where >= 0) {
                            (deviceTurn ? deviceBy : backendBy)[where].add(turn);
                        }
                    }
                }
                if (floor != null) {
                    // the floor's pair of turns, while both machines are idle
                    double before = probe;
                    RingFloor.Turn f = floor.turn();
                    probe = CrossCpuProbe.sample();
                    if (w >= 0) {
                        floorAll.add(f);
                        int where = placement(before, probe);
                        if (where >= 0) {
                            floorBy[where].add(f);
                        }
                    }
                }
            }
            if (reader.errors() > 0) {
                throw new IllegalStateException(reader.errors() + " reads failed straight on the backend");
            }
            if (task.errors() > 0) {
                throw new IllegalStateException(task.errors() + " reads failed through the device");
            }
            // diagnostics on standard error: CPU each thread spent per request (busy or spinning), and
            // how the guest spent its steps (a healthy run streams with few sleeps)
            // and how often the IOThread left its processor: about once per queue's worth of requests when the vCPU
            // and the IOThread take turns on one processor (the other one busy elsewhere), rarely when each has its own
            System.err.printf(Locale.ROOT, "diagnostics: %s backend: iothread_cpu_ns_per_io=%.0f iothread_cpu_share=%.2f"
                    + " iothread_switches_per_1000_io=%.1f%n", label,
                    (double) backend.iothreadCpu / backend.completions, (double) backend.iothreadCpu / backend.nanos,
                    1000.0 * backend.iothreadSwitches / backend.completions);
            System.err.printf(Locale.ROOT, "diagnostics: %s device: iothread_cpu_ns_per_io=%.0f vcpu_cpu_ns_per_io=%.0f iothread_cpu_share=%.2f"
                    + " iothread_switches_per_1000_io=%.1f completions=%d guest_steps=%d guest_empty_polls=%d guest_sleeps=%d notifies=%d%n", label,
                    (double) device.iothreadCpu / device.completions, (double) device.vcpuCpu / device.completions,
                    (double) device.iothreadCpu / device.nanos, 1000.0 * device.iothreadSwitches / device.completions, device.completions,
                    task.steps - s0, task.emptyPolls - e0, task.sleeps - z0, task.notifies - n0);
            placementLines(label, probes, backendBy, deviceBy);
            if (floor != null) {
                floorLines(label, floorAll, floorBy);
            }
            if (windowRatios.size() >= 4) {
                double[] r = windowRatios.stream().mapToDouble(Double::doubleValue).sorted().toArray();
                line(label + "_ratio_by_window", String.format(Locale.ROOT, "median %.3f, quartiles %.3f-%.3f, range %.3f-%.3f (%d windows)",
                        r[r.length / 2], r[r.length / 4], r[r.length * 3 / 4], r[0], r[r.length - 1], r.length));
            }
            return new Pair(backend.iops(), device.iops(), floor == null ? Double.NaN : floorAll.ratio());
        }
    }

    /**
     * What the split-ring floor reached in its turns of this run: overall and split by where the host had
     * the two processors, as for the device.
     */
    private void floorLines(String label, FloorTally all, FloorTally[] by) {
        line(label + "_floor", "minimal split-ring device in C (bench/src/main/c/ring_floor.c), " + all.turns + " turns");
        line(label + "_floor_iops", String.format(Locale.ROOT, "model %.0f, reference %.0f", all.model / all.turns, all.reference / all.turns));
        line(label + "_floor_ratio", String.format(Locale.ROOT, "%.3f", all.ratio()));
        String[] names = {"near", "far"};
        for (int i = 0; i < 2; i++) {
            if (by[i].turns > 0) {
                line(label + "_floor_ratio_" + names[i], String.format(Locale.ROOT, "%.3f (%d turns)", by[i].ratio(), by[i].turns));
            }
        }
    }

    /**
     * Where the host had the VM's two processors around a turn, from the probes before and after it:
     * 0 near (sharing a cache), 1 far, -1 unknown (the two disagree: the host moved them meanwhile; or
     * a probe found no free processor).
     */
    private static int placement(double before, double after) {
        if (Double.isNaN(before) || Double.isNaN(after)) {
            return -1;
        }
        boolean farBefore = before > CrossCpuProbe.FAR_NANOS;
        boolean farAfter = after > CrossCpuProbe.FAR_NANOS;
        return farBefore != farAfter ? -1 : farBefore ? 1 : 0;
    }

    /**
     * The ratio again, over the turns where the two processors were near, and over those where they
     * were far (see {@link CrossCpuProbe}): the device path hands cache lines between the vCPU's
     * processor and the IOThread's on every request, the reference does not, so where the host puts
     * the two processors moves the ratio. Every turn still counts in the ratio printed before.
     */
    private void placementLines(String label, java.util.List<Double> probes, Tally[] backendBy, Tally[] deviceBy) {
        double[] near = probes.stream().mapToDouble(Double::doubleValue).filter(v -> v <= CrossCpuProbe.FAR_NANOS).sorted().toArray();
        double[] far = probes.stream().mapToDouble(Double::doubleValue).filter(v -> v > CrossCpuProbe.FAR_NANOS).sorted().toArray();
        long unknown = probes.stream().filter(v -> v.isNaN()).count();
        line(label + "_cross_cpu_probes", probes.size() + " (near " + near.length + ", far " + far.length + ", no free processor " + unknown
                + "; far above " + Math.round(CrossCpuProbe.FAR_NANOS) + " ns a round trip)");
        String[] names = {"near", "far"};
        double[][] byPlace = {near, far};
        for (int i = 0; i < 2; i++) {
            if (byPlace[i].length > 0) {
                line(label + "_cross_cpu_round_trip_ns_" + names[i], Math.round(byPlace[i][byPlace[i].length / 2]));
            }
            if (backendBy[i].completions > 0 && deviceBy[i].completions > 0) {
                line(label + "_ratio_" + names[i], String.format(Locale.ROOT, "%.3f", deviceBy[i].iops() / backendBy[i].iops()));
                line(label + "_turns_" + names[i], String.format(Locale.ROOT, "device %d, backend %d; IOThread ns per request: device %.0f, backend %.0f",
                        deviceBy[i].turns, backendBy[i].turns, (double) deviceBy[i].iothreadCpu / deviceBy[i].completions,
                        (double) backendBy[i].iothreadCpu / backendBy[i].completions));
            }
        }
    }

    /**
     * {@code --ab=PROPERTY[=VALUE]}: an A/B experiment in one run. The backend reference and two device
     * machines run by turns in the same windows: A as configured, B with its machine, device and guest
     * created while system property {@code PROPERTY} is {@code VALUE} (default {@code false}), for
     * settings read when a loop or a queue is created (for example {@code modemu.loop.yield=0}).
     * Prints each path's IOPS, A's and B's ratio to the reference, and each IOThread's CPU per request.
     */
    private void abCompare(String label, String drive, String property) throws Exception {
        String[] pv = property.split("=", 2);
        String prop = pv[0];
        String bValue = pv.length > 1 ? pv[1] : "false";
        try (Machine mb = machine(0, "iob", new io.modemu.aio.ThreadLoopDriver());
                Machine ma = machine(1, "iod", new io.modemu.aio.ThreadLoopDriver());
                Machine mx = withProperty(prop, bValue, () -> machine(1, "ioe", new io.modemu.aio.ThreadLoopDriver()))) {
            BlockBackend be = mb.addDrive("d0", Options.parse("-drive", drive, null));
            mb.onMainLoop(() -> be.setAioContext(mb.iothread("iob"))).toCompletableFuture().get(10, TimeUnit.SECONDS);
            DirectReader reader = new DirectReader(be, mb.memory(), BUFFERS, qd, bs);
            Machine[] devs = {ma, mx};
            String[] iothreads = {"iod", "ioe"};
            RandomReadProgram.Task[] tasks = new RandomReadProgram.Task[2];
            for (int i = 0; i < 2; i++) {
                Machine m = devs[i];
                String io = iothreads[i];
                java.util.concurrent.Callable<RandomReadProgram.Task> create = () -> {
                    m.addDrive("d0", Options.parse("-drive", drive, null));
                    m.addDevice(Options.parse("-device", "virtio-blk-device,drive=d0,iothread=" + io + ",queue-size=256", "driver"));
                    return (RandomReadProgram.Task) m.loadGuest(RandomReadProgram.NAME,
                            Options.parse("-guest", "qd=" + qd + ",bs=" + bs + "," + guestPolling, null));
                };
                tasks[i] = i == 0 ? create.call() : withProperty(prop, bValue, create);
            }
            Tally[] t = {new Tally(), new Tally(), new Tally()};
            long[][] threads = {{-1, -1, -1}, {-1, -1, -1}, {-1, -1, -1}};
            long window = WINDOW_NANOS;
            long settle = 50_000_000L;
            int windows = (int) Math.max(1, seconds * 1_000_000_000L / (window - settle));
            int warmups = (int) Math.max(1, warmup * 1_000_000_000L / window / 3);
            for (int w = -warmups; w < windows; w++) {
                // rotating order: no path always runs right after another
                for (int k = 0; k < 3; k++) {
                    int path = Math.floorMod(w + k, 3);
                    Tally tally = w >= 0 ? t[path] : null;
                    if (path == 0) {
                        reader.resume();
                        if (threads[0][0] < 0) {
                            threads[0] = new long[] {threadId("modemu-iob"), -1, nativeTid("modemu-iob")};
                        }
                        runWindow(tally, reader::completed, threads[0], settle, window);
                        reader.pause();
                        while (reader.inFlight() > 0) {
                            Thread.sleep(1);
                        }
                    } else {
                        Machine md = devs[path - 1];
                        md.vmStart().get(30, TimeUnit.SECONDS);
                        if (threads[path][0] < 0) {
                            threads[path] = new long[] {threadId("modemu-" + iothreads[path - 1]), -1, nativeTid("modemu-" + iothreads[path - 1])};
                        }
                        runWindow(tally, tasks[path - 1]::completed, threads[path], settle, window);
                        md.vmStop(RunState.PAUSED).get(30, TimeUnit.SECONDS);
                    }
                }
            }
            line(label + "_ab_b", prop + "=" + bValue);
            line(label + "_ab_backend_iops", Math.round(t[0].iops()));
            line(label + "_ab_a_iops", Math.round(t[1].iops()));
            line(label + "_ab_b_iops", Math.round(t[2].iops()));
            line(label + "_ab_a_ratio", String.format(Locale.ROOT, "%.3f", t[1].iops() / t[0].iops()));
            line(label + "_ab_b_ratio", String.format(Locale.ROOT, "%.3f", t[2].iops() / t[0].iops()));
            String[] names = {"backend", "a", "b"};
            for (int i = 0; i < 3; i++) {
                line(label + "_ab_" + names[i] + "_iothread_cpu_ns_per_io", Math.round((double) t[i].iothreadCpu / t[i].completions));
            }
            for (int i = 0; i < 3; i++) {
                line(label + "_ab_" + names[i] + "_iothread_switches_per_1000_io",
                        String.format(Locale.ROOT, "%.1f", 1000.0 * t[i].iothreadSwitches / t[i].completions));
            }
        }
    }

    /** Runs {@code body} with system property {@code prop} set to {@code value}, then restores it. */
    private static <T> T withProperty(String prop, String value, java.util.concurrent.Callable<T> body) throws Exception {
        String old = System.getProperty(prop);
        System.setProperty(prop, value);
        try {
            return body.call();
        } finally {
            if (old == null) {
                System.clearProperty(prop);
            } else {
                System.setProperty(prop, old);
            }
        }
    }

    /** Lets a path run for {@code window}, counting (into {@code tally}, unless null) after {@code settle}. */
    private static void runWindow(Tally tally, java.util.function.LongSupplier completed, long[] threads, long settle, long window)
            throws InterruptedException {
        Thread.sleep(settle / 1_000_000);
        long[] cpu0 = cpuTimes(threads);
        long c0 = completed.getAsLong();
        long t0 = System.nanoTime();
        Thread.sleep((window - settle) / 1_000_000);
        long c1 = completed.getAsLong();
        long t1 = System.nanoTime();
        long[] cpu1 = cpuTimes(threads);
        if (tally != null) {
            tally.add(c1 - c0, t1 - t0, cpu0, cpu1);
        }
    }

    /**
     * Requests per second of CPU time through the device with every context on one thread: the
     * inverse of the whole CPU cost of a request (guest driver, device, backend), independent of other
     * load on the machine (it counts this thread's CPU time, not the wall clock).
     */
    private double singleThreadIops(String drive) {
        SingleThreadLoopDriver loops = new SingleThreadLoopDriver();
        Machine m = machine(1, loops);
        try {
            m.addDrive("d0", Options.parse("-drive", drive, null));
            m.addDevice(Options.parse("-device", "virtio-blk-device,drive=d0,iothread=io0,queue-size=256", "driver"));
            RandomReadProgram.Task task = (RandomReadProgram.Task) m.loadGuest(RandomReadProgram.NAME,
                    Options.parse("-guest", "qd=" + qd + ",bs=" + bs + ",poll=0", null));
            loops.await(m.vmStart());
            loops.runFor(TimeUnit.SECONDS.toNanos(warmup));
            java.lang.management.ThreadMXBean cpu = java.lang.management.ManagementFactory.getThreadMXBean();
            long c0 = task.completed();
            long t0 = cpu.getCurrentThreadCpuTime();
            loops.runFor(TimeUnit.SECONDS.toNanos(seconds));
            long c1 = task.completed();
            long t1 = cpu.getCurrentThreadCpuTime();
            loops.await(m.vmStop(RunState.PAUSED));
            // per second of this thread's CPU time: other load on the machine does not count
            return (c1 - c0) * 1e9 / (t1 - t0);
        } finally {
            m.close();
        }
    }

    /** The same reads straight to the backend, on one thread, per second of that thread's CPU time. */
    private double singleThreadBackendIops(String drive) {
        SingleThreadLoopDriver loops = new SingleThreadLoopDriver();
        Machine m = machine(0, loops);
        try {
            BlockBackend be = m.addDrive("d0", Options.parse("-drive", drive, null));
            loops.await(m.mainLoop().submitAsync(() -> be.setAioContext(m.iothread("io0"))));
            DirectReader r = new DirectReader(be, m.memory(), BUFFERS, qd, bs);
            r.resume();
            loops.runFor(TimeUnit.SECONDS.toNanos(warmup));
            java.lang.management.ThreadMXBean cpu = java.lang.management.ManagementFactory.getThreadMXBean();
            long c0 = r.completed();
            long t0 = cpu.getCurrentThreadCpuTime();
            loops.runFor(TimeUnit.SECONDS.toNanos(seconds));
            long c1 = r.completed();
            long t1 = cpu.getCurrentThreadCpuTime();
            r.pause();
            return (c1 - c0) * 1e9 / (t1 - t0);
        } finally {
            m.close();
        }
    }

    private void oneCore(String prefix, String drive) {
        double device = singleThreadIops(drive);
        double backend = singleThreadBackendIops(drive);
        line(prefix + "_one_core_iops_per_cpu_second", Math.round(device));
        line(prefix + "_one_core_backend_iops_per_cpu_second", Math.round(backend));
        line(prefix + "_one_core_device_cpu_ns_per_io", Math.round(1e9 / device - 1e9 / backend));
    }

    private static long threadId(String name) {
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().equals(name)) {
                return t.threadId();
            }
        }
        return -1;
    }

    /**
     * CPU time of the IOThread and the vCPU ({@code ids[0]}, {@code ids[1]}: Java thread ids, -1 for none),
     * then the IOThread's context switches ({@code ids[2]}: its native thread id, -1 for none).
     */
    private static long[] cpuTimes(long[] ids) {
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        long[] t = new long[3];
        for (int i = 0; i < 2; i++) {
            t[i] = ids[i] < 0 ? 0 : mx.getThreadCpuTime(ids[i]);
        }
        t[2] = contextSwitches(ids[2]);
        return t;
    }

    /** The native id of this process's thread named {@code name} (Linux: /proc/self/task/N/comm), or -1. */
    private static long nativeTid(String name) {
        try (var tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path task : (Iterable<Path>) tasks::iterator) {
                try {
                    if (Files.readString(task.resolve("comm")).strip().equals(name)) {
                        return Long.parseLong(task.getFileName().toString());
                    }
                } catch (IOException | NumberFormatException e) {
                    // a thread that ended meanwhile
                }
            }
        } catch (IOException | UncheckedIOException e) {
            // not Linux: no switch counts
        }
        return -1;
    }

    /** Voluntary and involuntary context switches of native thread {@code tid} so far, or 0 if unknown. */
    private static long contextSwitches(long tid) {
        if (tid < 0) {
            return 0;
        }
        long n = 0;
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/task/" + tid + "/status"))) {
                if (l.startsWith("voluntary_ctxt_switches:") || l.startsWith("nonvoluntary_ctxt_switches:")) {
                    n += Long.parseLong(l.substring(l.indexOf(':') + 1).strip());
                }
            }
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
        return n;
    }

    /** The stock plugin's contribution, found like the plugin host finds it: through ServiceLoader. */
    private static <S> S provider(Class<S> spi, String name) {
        for (S s : java.util.ServiceLoader.load(spi)) {
            String n = s instanceof io.modemu.block.BlockDriver d ? d.name() : ((io.modemu.device.DeviceType) s).name();
            if (n.equals(name)) {
                return s;
            }
        }
        throw new IllegalStateException("no " + spi.getSimpleName() + " '" + name + "' on the module path");
    }
}
