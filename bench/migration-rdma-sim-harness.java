/*
 * The processes of bench/migration-rdma-sim (a single-file program, run with the java launcher):
 *
 *   memcpy SIZE                        plain memory-copy bandwidth, best of 5 (the fabric's physical limit)
 *   destination URI RAM [RAMFILE|-]    a machine in inmigrate listening on URI; prints LISTENING <uri>, then DESTINATION ...
 *                                      (RAMFILE: guest RAM in that shared file, preallocated first as QEMU's prealloc=on,
 *                                      as anonymous guest RAM is when the machine is built)
 *   source URI RAM RANDOM              a machine with RANDOM bytes of random RAM, idle, migrating to URI; prints SOURCE ...
 *
 * Both machines print a hash of guest RAM after the migration so that the script checks the data.
 */

import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.LiveMigration;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationTransport;
import io.modemu.options.Sizes;
import io.modemu.plugin.Contributions;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

public class MigrationRdmaSimHarness {
    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "memcpy" -> memcpy(Sizes.parse(args[1], 1, "size"));
            case "destination" -> destination(args[1], Sizes.parse(args[2], 1, "ram"), args.length > 3 && !args[3].equals("-") ? Path.of(args[3]) : null);
            case "source" -> source(args[1], Sizes.parse(args[2], 1, "ram"), Sizes.parse(args[3], 1, "random"));
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
        System.exit(0);
    }

    private static void memcpy(long size) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocate(size, 4096);
            MemorySegment b = arena.allocate(size, 4096);
            a.fill((byte) 1);
            b.fill((byte) 2);
            double best = 0;
            for (int i = 0; i < 5; i++) {
                long t0 = System.nanoTime();
                MemorySegment.copy(a, 0, b, 0, size);
                long t = System.nanoTime() - t0;
                best = Math.max(best, size / (t / 1e9));
            }
            System.out.printf("MEMCPY bytes_per_s=%.0f%n", best);
        }
    }

    private static Contributions transports() throws Exception {
        Contributions.Builder b = Contributions.builder();
        for (String name : new String[] {"io.modemu.migration.tcp.TcpTransport", "io.modemu.migration.rdmasim.RdmaSimTransport"}) {
            try {
                b.add((MigrationTransport) Class.forName(name).getDeclaredConstructor().newInstance());
            } catch (ClassNotFoundException e) {
                System.err.println("harness: " + name + " is not on the class path; its scheme is unavailable");
            }
        }
        return b.build();
    }

    private static long hash(Machine m) {
        MemorySegment ram = m.memory().blocks().getFirst().segment();
        long h = 0x243F6A8885A308D3L;
        long n = ram.byteSize() / 8;
        for (long i = 0; i < n; i++) {
            h = (h ^ ram.getAtIndex(ValueLayout.JAVA_LONG, i)) * 0x9E3779B97F4A7C15L;
        }
        return h;
    }

    private static void destination(String uri, long ram, Path ramFile) throws Exception {
        Machine.Builder b = Machine.builder().name("dst").ram(ram).vcpus(0).initialState(RunState.INMIGRATE).contributions(transports());
        if (ramFile != null) {
            b.ramFile(ramFile);
        }
        try (Machine m = b.build(); LiveMigration lm = new LiveMigration(m)) {
            if (ramFile != null) {
                MemorySegment seg = m.memory().blocks().getFirst().segment();
                for (long off = 0; off < seg.byteSize(); off += 4096) {
                    seg.set(ValueLayout.JAVA_BYTE, off, (byte) 0);
                }
            }
            // the process's migration warm-up ends before anything is measured (it would compete for the processors)
            LiveMigration.warmUp().get(2, TimeUnit.MINUTES);
            System.out.println("LISTENING " + lm.incoming(uri, new IncomingOptions(true, false)));
            System.out.flush();
            MigrationInfo info = lm.completion().get(10, TimeUnit.MINUTES);
            System.out.printf("DESTINATION status=%s hash=%x%n", info.status(), hash(m));
        }
    }

    private static void source(String uri, long ram, long random) throws Exception {
        try (Machine m = Machine.builder().name("src").ram(ram).vcpus(0).contributions(transports()).build(); LiveMigration lm = new LiveMigration(m)) {
            MemorySegment seg = m.memory().blocks().getFirst().segment();
            byte[] chunk = new byte[1 << 20];
            SplittableRandom r = new SplittableRandom(2025);
            for (long off = 0; off < random; off += chunk.length) {
                r.nextBytes(chunk);
                MemorySegment.copy(MemorySegment.ofArray(chunk), 0, seg, off, Math.min(chunk.length, random - off));
            }
            // a writer of guest RAM marks what it wrote (what a migration relies on)
            m.memory().blocks().getFirst().dirty().mark(0, random);
            m.vmStart().join();
            LiveMigration.warmUp().get(2, TimeUnit.MINUTES);
            lm.setParameters(lm.parameters().withMaxBandwidth(0));
            lm.migrate(uri);
            MigrationInfo info = lm.completion().get(10, TimeUnit.MINUTES);
            MigrationInfo.Ram s = info.ram();
            System.out.printf("SOURCE status=%s total_ms=%d downtime_ms=%d setup_ms=%d transferred=%d normal_bytes=%d passes=%d hash=%x error=%s%n",
                    info.status(), info.totalTimeMs(), info.downtimeMs(), info.setupTimeMs(), s.transferred(), s.normalBytes(), s.dirtySyncCount(),
                    hash(m), info.errorDesc());
        }
    }
}
