package io.modemu.migration.internal;

import io.modemu.machine.Machine;
import io.modemu.machine.RamBlock;
import io.modemu.machine.RunState;
import io.modemu.migration.ChannelSettings;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationListener;
import io.modemu.migration.MigrationParameters;
import io.modemu.migration.MigrationTransport;
import io.modemu.plugin.ContributionKind;
import io.modemu.platform.ProcessFiles;
import io.modemu.plugin.Contributions;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.event.Level;

/**
 * Pays, once per process and on a background thread, the one-time costs of the engine's paths:
 *
 * <ul>
 *   <li><b>Set-up</b>: class initialisation, the first use of JDK facilities (a random session id,
 *       CRC32C, direct staging buffers) and the first run of the stream code, which resolves its
 *       constant pools and call sites. Without it a migration's set-up paid them between connecting
 *       and sending its configuration: 5–15 ms on the reference machine, as much as the rest of the
 *       set-up. It writes a stream into an in-memory channel and reads it back.</li>
 *   <li><b>Downtime</b>: the first stop into {@code finish-migrate} and the first start, on a machine
 *       of its own.</li>
 *   <li><b>Transfer</b>: the JIT compilation of the per-page code on both ends (the dirty-bitmap walk,
 *       zero-page checks, records, the transport's writes and reads, loading into RAM). Without it the
 *       first migration in a process compiled that code while it ran, at tier 1 and again at tier 4, on
 *       the processors the migration needed: on the reference machine (2 processors, both ends busy)
 *       the compiler threads ran for 220 ms on the source and 160 ms on the destination during a 430 ms
 *       migration. It migrates a machine of its own (16 MiB) to another of its own (RAM in a shared
 *       file, as a one-sided transport needs) over each transport that offers a
 *       {@linkplain MigrationTransport#loopbackAddress() loopback address}, once per
 *       {@linkplain MigrationTransport#loopbackVariants() variant}, through the engine's real code,
 *       re-dirtying scattered pages so that it keeps iterating until {@link #JIT_BYTES} went through;
 *       with several routes, a second shorter round, so that the last compilation has seen every
 *       route's branches. Before and after, it waits for the JIT's compiler threads to be idle.</li>
 * </ul>
 *
 * <p>It never delays a real migration: a migration that starts in the process (outgoing, or an
 * incoming one accepting its connection) stops the warm-up, and the machines it used are closed. It
 * touches no machine but its own and no network but loopback; its machines log at DEBUG only.
 */
public final class EngineWarmup {
    private static final Logger log = LoggerFactory.getLogger(EngineWarmup.class);
    private static final AtomicBoolean STARTED = new AtomicBoolean();
    /** Set (any value): no short last round after the compiler went idle (for A/B measurements). */
    static final String TOP_UP_OFF = "modemu.migration.warm-up.no-top-up";

    /** RAM of each warm-up machine. */
    static final long JIT_RAM = 16L << 20;
    /** Data moved by a transport's warm-up migration: enough for the page and record code to reach tier 4. */
    public static final long JIT_BYTES = 192L << 20;
    /** The warm-up's own machines, while they exist. */
    private static final Set<Machine> OWN = ConcurrentHashMap.newKeySet();
    private static volatile boolean yielded;
    private static volatile OutgoingMigration current;
    private static final java.util.concurrent.CompletableFuture<Void> DONE = new java.util.concurrent.CompletableFuture<>();

    private EngineWarmup() {
    }

    /**
     * Starts the warm-up unless it ran already in this process, with the transports of
     * {@code contributions}. Any thread; returns at once. {@code -Dmodemu.migration.warm-up=light}
     * leaves out the transfer part, {@code off} the whole warm-up.
     */
    public static void startOnce(Contributions contributions) {
        String mode = System.getProperty("modemu.migration.warm-up", "on");
        if (STARTED.compareAndSet(false, true)) {
            if (mode.equals("off")) {
                DONE.complete(null);
                return;
            }
            boolean transfer = !mode.equals("light");
            Thread.ofPlatform().daemon().name("modemu-migration warm-up").priority(Thread.MIN_PRIORITY).start(() -> {
                try {
                    run(contributions, transfer);
                } finally {
                    DONE.complete(null);
                }
            });
        }
    }

    /** Completes when the warm-up ended (finished, stopped by a migration, or failed); never if it was not started. */
    public static java.util.concurrent.CompletableFuture<Void> done() {
        return DONE.copy();
    }

    /**
     * A migration is starting in this process: the warm-up stops (a warm-up migration in progress is
     * cancelled) and does not start again. Any thread.
     */
    public static void yieldToMigration() {
        yielded = true;
        OutgoingMigration m = current;
        if (m != null) {
            m.cancel();
        }
    }

    /** Whether {@code machine} is one of the warm-up's own (its migrations log at DEBUG and stop no warm-up). */
    static boolean owns(Machine machine) {
        return !OWN.isEmpty() && OWN.contains(machine);
    }

    /** The level of a migration's operator messages: INFO, DEBUG for the warm-up's own machines, which nobody asked for. */
    static Level noticeLevel(Machine machine) {
        return owns(machine) ? Level.DEBUG : Level.INFO;
    }

    /** One warm-up migration: a transport, its loopback address, and what the source appends to it. */
    private record Route(MigrationTransport transport, String address, String variant) {
    }

    private static void run(Contributions contributions, boolean transfer) {
        long t0 = System.nanoTime();
        try {
            roundTrip();
            long t1 = System.nanoTime();
            runStates();
            long t2 = System.nanoTime();
            log.debug("migration engine warmed up in {} us (stream), {} us (run states)", (t1 - t0) / 1000, (t2 - t1) / 1000);
            if (transfer && contributions != null) {
                List<Route> routes = new java.util.ArrayList<>();
                for (String scheme : contributions.names(ContributionKind.MIGRATION_SCHEME)) {
                    MigrationTransport t = contributions.transport(scheme);
                    t.loopbackAddress().ifPresent(address -> t.loopbackVariants().forEach(v -> routes.add(new Route(t, address, v))));
                }
                // with several routes, a second round: the page loop compiled during one route meets the
                // others' branches as traps and is compiled again; by the second round every branch was seen
                int rounds = routes.size() > 1 ? 2 : 1;
                // a compile queue full of the process's start-up work raises the JIT's thresholds for tier 4
                // (its load feedback): the page loop would then stay at tier 3 through the warm-up
                if (!routes.isEmpty()) {
                    awaitCompilerIdle(Duration.ofSeconds(10));
                }
                for (int round = 0; round < rounds && !yielded; round++) {
                    for (int i = 0; i < routes.size() && !yielded; i++) {
                        Route r = routes.get(i);
                        long t3 = System.nanoTime();
                        long moved = transfer(contributions, r.transport(), r.address(), r.variant(), round == 0 ? JIT_BYTES : JIT_BYTES / 4, () -> yielded);
                        log.debug("migration engine warmed up over {}{}: {} bytes in {} us{}", r.transport().scheme(), r.variant(), moved,
                                (System.nanoTime() - t3) / 1000, yielded ? " (stopped: a migration started)" : "");
                    }
                }
                long t4 = System.nanoTime();
                awaitCompilerIdle(Duration.ofSeconds(10));
                // once more, short, now that the compiler is idle: a method the JIT left at a lower tier while its
                // queue was long moves up only when it runs again, which would otherwise be the first real migration
                // (seen: the page loop at tier 2 through the whole warm-up, its tier-4 compile taking 235 ms of that
                // migration's 305). Over every route, as the rounds above: a transport's own code (rdma-sim's
                // prefetcher and its work-request loop) runs over its routes only. Then wait for what this round queued
                if (!routes.isEmpty() && !yielded && System.getProperty(TOP_UP_OFF) == null) {
                    for (int i = 0; i < routes.size() && !yielded; i++) {
                        Route r = routes.get(i);
                        transfer(contributions, r.transport(), r.address(), r.variant(), JIT_BYTES / 8, () -> yielded);
                    }
                    awaitCompilerIdle(Duration.ofSeconds(10));
                }
                log.debug("migration engine warm-up: the JIT's compiler threads were busy for {} ms more", (System.nanoTime() - t4) / 1_000_000);
            }
        } catch (IOException | RuntimeException | InterruptedException e) {
            // only a lost head start: the first migration pays these costs itself
            log.debug("migration engine warm-up stopped: {}", e.toString());
        }
    }

    /**
     * Waits until the JIT's compiler threads have been idle for 100 ms (their CPU time in
     * {@code /proc/self/task}), at most {@code max}, or until a migration starts. A tier-4 compilation
     * of the page loop with both kinds of writes inlined took 0.6 s of a compiler thread on the
     * reference machine: a migration that started meanwhile shared the processors with it. Without
     * {@code /proc}, waits half a second.
     */
    static void awaitCompilerIdle(Duration max) throws InterruptedException {
        long deadline = System.nanoTime() + max.toNanos();
        long last = compilerCpuTicks();
        if (last < 0) {
            Thread.sleep(500);
            return;
        }
        int quiet = 0;
        while (quiet < 2 && !yielded && System.nanoTime() - deadline < 0) {
            Thread.sleep(50);
            long now = compilerCpuTicks();
            quiet = now == last ? quiet + 1 : 0;
            last = now;
        }
    }

    /** The CPU time (clock ticks) of this process's JIT compiler threads so far, or -1 when it cannot be read. */
    static long compilerCpuTicks() {
        long sum = 0;
        boolean any = false;
        try (java.nio.file.DirectoryStream<Path> tasks = Files.newDirectoryStream(Path.of("/proc/self/task"))) {
            for (Path t : tasks) {
                String comm;
                String stat;
                try {
                    comm = Files.readString(t.resolve("comm")).trim();
                    if (!comm.startsWith("C1 CompilerThre") && !comm.startsWith("C2 CompilerThre")) {
                        continue;
                    }
                    stat = Files.readString(t.resolve("stat"));
                } catch (IOException gone) {
                    // the thread ended meanwhile
                    continue;
                }
                // after "(comm) ": state is field 3, utime field 14, stime field 15
                String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                sum += Long.parseLong(f[11]) + Long.parseLong(f[12]);
                any = true;
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return any ? sum : -1;
    }

    /**
     * Migrates a machine of its own to another of its own over {@code transport} at {@code address}
     * (loopback; the source connects to the listener's address followed by {@code variant}), keeping
     * the migration iterating until {@code bytes} went through, then lets it complete; once
     * {@code stop} says so, cancels it instead. Returns the bytes moved.
     */
    private static final String RAM_FILE_PREFIX = "modemu-migration-warm-up-";

    /** Removes the warm-up RAM files of processes that no longer exist (killed during a warm-up). */
    static void sweepStaleRamFiles(Path dir) {
        ProcessFiles.sweep(dir, RAM_FILE_PREFIX);
    }

    public static long transfer(Contributions contributions, MigrationTransport transport, String address, String variant, long bytes,
                                java.util.function.BooleanSupplier stop)
            throws IOException, InterruptedException {
        MigrationParameters defaults = MigrationParameters.defaults();
        // the destination's RAM is a shared file when a one-sided transport needs it (rdma-sim), removed after;
        // anonymous otherwise, as such a transport's destinations usually have it (the loading code compiled
        // for one kind of memory segment is thrown away when a real migration brings the other)
        Path ramFile = null;
        if (transport.destinationRamMustBeShared()) {
            Path shm = Path.of("/dev/shm");
            Path dir = Files.isDirectory(shm) && Files.isWritable(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
            sweepStaleRamFiles(dir);
            // named after this process, so that a later one removes it if this one is killed before it can
            ramFile = Files.createTempFile(dir, ProcessFiles.namePrefix(RAM_FILE_PREFIX), ".ram");
        }
        Machine.Builder dstBuilder = Machine.builder().name("migration-warm-up-destination").ram(JIT_RAM).vcpus(0)
                .initialState(RunState.INMIGRATE).contributions(contributions);
        if (ramFile != null) {
            dstBuilder.ramFile(ramFile);
        }
        try (Machine src = Machine.builder().name("migration-warm-up-source").ram(JIT_RAM).vcpus(0).contributions(contributions).build();
             Machine dst = dstBuilder.build()) {
            OWN.add(src);
            OWN.add(dst);
            try {
                RamBlock ram = src.memory().blocks().getFirst();
                // half random, a little written zero, the rest never written: every kind of page a migration meets
                byte[] chunk = new byte[64 * 1024];
                SplittableRandom random = new SplittableRandom(ThreadLocalRandom.current().nextLong());
                long half = JIT_RAM / 2;
                for (long at = 0; at < half; at += chunk.length) {
                    random.nextBytes(chunk);
                    MemorySegment.copy(MemorySegment.ofArray(chunk), 0, ram.segment(), at, chunk.length);
                }
                ram.dirty().mark(0, half + JIT_RAM / 8);
                src.vmStart().join();
                ChannelSettings settings = new ChannelSettings(Duration.ofMillis(defaults.ioTimeoutMs()), Duration.ofMillis(defaults.ioTimeoutMs()));
                MigrationListener listener = transport.listen(address, settings);
                String uri = transport.scheme() + ":" + listener.address();
                IncomingMigration in = new IncomingMigration(dst, listener, uri, new IncomingOptions(false, false), defaults);
                in.start();
                // a downtime limit of 0 never switches over while pages are dirty; one pass in four runs with QEMU's
                // default bandwidth limit, the others with none, so that the compiled page loop has seen both (a branch
                // the JIT never saw taken is compiled as a trap: the first real migration that took it had the
                // loop thrown away and compiled again, 0.8-1 s of a compiler thread, while it ran)
                MigrationParameters unlimited = defaults.withDowntimeLimitMs(0).withMaxBandwidth(0);
                MigrationParameters limited = defaults.withDowntimeLimitMs(0);
                MigrationParameters finish = defaults.withMaxBandwidth(0);
                ParameterCell parameters = new ParameterCell(unlimited);
                OutgoingMigration out = new OutgoingMigration(src, transport, uri + variant, listener.address() + variant, parameters, false, false);
                // each pass finds pages to send until the migration may switch over
                int[] passes = new int[1];
                out.beforeSync(() -> {
                    MigrationParameters p = parameters.get();
                    if (p != finish) {
                        dirtyPattern(ram, random);
                        passes[0]++;
                        parameters.compareAndSet(p, passes[0] % 4 == 0 ? limited : unlimited);
                    }
                });
                current = out;
                try {
                    if (stop.getAsBoolean()) {
                        in.cancel();
                        return 0;
                    }
                    out.start();
                    long moved = 0;
                    boolean cancelled = false;
                    while (!out.completion().isDone()) {
                        MigrationInfo info = out.info();
                        moved = info.ram() == null ? moved : info.ram().transferred();
                        if (stop.getAsBoolean()) {
                            if (!cancelled) {
                                cancelled = true;
                                out.cancel();
                            }
                        } else if (moved >= bytes) {
                            parameters.set(finish);
                        }
                        Thread.sleep(1);
                    }
                    // a cancelled source may have been stopped before it connected: its destination would wait for a
                    // connection that never comes (seen on a loaded host: the stop took the whole 10 s below)
                    if (cancelled || out.completion().isCompletedExceptionally()) {
                        in.cancel();
                    }
                    // a cancelled one ends at once; either way, wait for it, so that nothing loads into its machine once closed
                    try {
                        in.completion().get(10, TimeUnit.SECONDS);
                    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                        in.cancel();
                    }
                    return moved;
                } finally {
                    current = null;
                    in.cancel();
                }
            } finally {
                OWN.remove(src);
                OWN.remove(dst);
            }
        } finally {
            if (ramFile != null) {
                Files.deleteIfExists(ramFile);
            }
        }
    }

    /**
     * Starts, stops into {@code finish-migrate} and starts again a machine of its own (no vCPUs, one page
     * of RAM), so that a migration's downtime, which begins with the source's first stop and ends with
     * the destination's first start, does not run that code for the first time in the process.
     */
    static void runStates() {
        try (Machine m = Machine.builder().name("migration-warm-up").ram(Wire.PAGE).vcpus(0).build()) {
            m.vmStart().join();
            m.vmStopForceState(RunState.FINISH_MIGRATE).join();
            m.vmStart().join();
            m.vmStop(RunState.PAUSED).join();
        }
    }

    /**
     * Dirties what a guest at work would between two passes, in the random and the written-zero parts
     * of the warm-up RAM: scattered single pages, which make many short records (the per-record code
     * needs thousands of calls before the JIT compiles it at tier 4), and one longer run: about 5 MiB
     * in some 40 bitmap words, each of which runs the page loop over 25 pages on average.
     */
    private static void dirtyPattern(RamBlock ram, SplittableRandom random) {
        int pages = (int) ((JIT_RAM / 2 + JIT_RAM / 8) / Wire.PAGE);
        for (int k = 0; k < 1024; k++) {
            ram.dirty().markPage(random.nextInt(pages));
        }
        ram.dirty().mark((long) random.nextInt(pages - 256) * Wire.PAGE, 256L * Wire.PAGE);
    }

    /** Writes a small stream through the engine's writer and reads it back through its reader. */
    static void roundTrip() throws IOException {
        MachineConfig config = new MachineConfig("virt", List.of(new MachineConfig.Block("ram", 2L * Wire.PAGE)),
                List.of(new MachineConfig.Section(0, Wire.RAM_SECTION, Wire.RAM_VERSION, true, Map.of()),
                        new MachineConfig.Section(1, "warm-up", 1, false, Map.of("setting", "value"))),
                List.of(new MachineConfig.DeviceEntry("dev0", "warm-up")), List.of(new MachineConfig.Drive("drive0", Wire.PAGE, false)), 0, false);
        MemoryChannel ch = new MemoryChannel();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pages = arena.allocate(2L * Wire.PAGE, Wire.PAGE);
            pages.fill((byte) 0x5a);
            StreamOutput out = new StreamOutput(ch, new LongAdder());
            out.streamHeader(Wire.KIND_MAIN, 0, ThreadLocalRandom.current().nextLong(), System.nanoTime());
            byte[] cfg = config.encode();
            out.record(Wire.CONFIG, 0, 0, cfg.length, OutgoingMigration.crc(cfg));
            out.bytes(cfg);
            out.record(Wire.PAGES, 0, 0, 1, 0);
            out.pages(pages.asSlice(0, Wire.PAGE));
            out.record(Wire.ZERO, 0, 0, 1, Wire.PAGE);
            out.record(Wire.EOF, 0, 0, out.headerCrc(), 1);
            out.flush();

            StreamInput in = new StreamInput(ch, new LongAdder(), Duration.ofSeconds(1));
            in.streamHeader();
            in.next();
            byte[] back = in.bytes((int) in.b);
            if (OutgoingMigration.crc(back) != in.c) {
                throw new IOException("the configuration read back differs from the one written");
            }
            MachineConfig decoded = MachineConfig.decode(back);
            decoded.mismatches(config, Map.of());
            in.next();
            in.into(pages.asSlice(Wire.PAGE, Wire.PAGE));
            in.next();
            in.next();
            if (in.type != Wire.EOF) {
                throw new IOException("expected the end of the warm-up stream, got " + Wire.typeName(in.type));
            }
        }
    }

    /** A channel that reads back what was written to it. */
    private static final class MemoryChannel implements MigrationChannel {
        private ByteBuffer data = ByteBuffer.allocate(64 * 1024);

        @Override
        public String peer() {
            return "warm-up";
        }

        @Override
        public void write(ByteBuffer... srcs) {
            for (ByteBuffer s : srcs) {
                if (data.remaining() < s.remaining()) {
                    ByteBuffer bigger = ByteBuffer.allocate(Math.max(data.capacity() * 2, data.position() + s.remaining()));
                    data.flip();
                    bigger.put(data);
                    data = bigger;
                }
                data.put(s);
            }
        }

        @Override
        public int read(ByteBuffer dst, Duration timeout) {
            data.flip();
            if (!data.hasRemaining()) {
                data.compact();
                return -1;
            }
            int n = Math.min(dst.remaining(), data.remaining());
            dst.put(dst.position(), data, data.position(), n);
            dst.position(dst.position() + n);
            data.position(data.position() + n);
            data.compact();
            return n;
        }

        @Override
        public void close() {
        }
    }
}
