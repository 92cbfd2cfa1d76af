package io.modemu.migration.rdmasim;

import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.LiveMigration;
import io.modemu.migration.MigrationInfo;
import io.modemu.plugin.Contributions;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The other process of {@link MigrationProcessTest}; protocol lines on stdout.
 *
 * <ul>
 *   <li>{@code destination URI RAM RAMFILE}: waits for an incoming migration; prints {@code LISTENING uri},
 *       then {@code DONE status}.</li>
 *   <li>{@code source URI RAM}: fills RAM with random bytes, migrates slowly (16 MiB/s) to URI, prints
 *       {@code MIGRATING} once under way and {@code DONE status} at the end.</li>
 * </ul>
 */
public final class MigrationPeerMain {
    private MigrationPeerMain() {
    }

    public static void main(String[] args) throws Exception {
        long ram = Long.parseLong(args[2]);
        Contributions c = Contributions.builder().add(new RdmaSimTransport()).build();
        if (args[0].equals("destination")) {
            try (Machine m = Machine.builder().name("dst").ram(ram).ramFile(Path.of(args[3])).vcpus(0).initialState(RunState.INMIGRATE).contributions(c).build();
                 LiveMigration lm = new LiveMigration(m)) {
                System.out.println("LISTENING " + lm.incoming(args[1], new IncomingOptions(false, false)));
                System.out.flush();
                MigrationInfo info = lm.completion().get(5, TimeUnit.MINUTES);
                System.out.println("DONE " + info.status() + " " + info.errorDesc());
            }
        } else {
            try (Machine m = Machine.builder().name("src").ram(ram).vcpus(0).contributions(c).build(); LiveMigration lm = new LiveMigration(m)) {
                MemorySegment seg = m.memory().blocks().getFirst().segment();
                byte[] chunk = new byte[1 << 20];
                SplittableRandom r = new SplittableRandom(7);
                for (long off = 0; off < ram; off += chunk.length) {
                    r.nextBytes(chunk);
                    MemorySegment.copy(MemorySegment.ofArray(chunk), 0, seg, off, chunk.length);
                }
                // a writer of guest RAM marks what it wrote: a page nobody marked migrates as zero
                m.memory().blocks().getFirst().dirty().mark(0, ram);
                m.vmStart().join();
                lm.setParameters(lm.parameters().withMaxBandwidth(16L << 20));
                lm.migrate(args[1]);
                long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
                while (lm.info().ram() == null || lm.info().ram().transferred() < (4L << 20)) {
                    if (System.nanoTime() > deadline) {
                        System.out.println("DONE stuck: " + lm.info());
                        System.exit(1);
                    }
                    Thread.sleep(5);
                }
                System.out.println("MIGRATING");
                System.out.flush();
                MigrationInfo info = lm.completion().get(5, TimeUnit.MINUTES);
                System.out.println("DONE " + info.status() + " " + info.errorDesc());
            }
        }
        System.exit(0);
    }
}
