package io.modemu.migration.rdmasim;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.LiveMigration;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationStatus;
import io.modemu.plugin.Contributions;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Source and destination in two processes; either one is killed (SIGKILL) in the middle of the RAM passes. */
class MigrationProcessTest {
    private static final long RAM = 64L << 20;
    private Path dir;
    private final List<Process> children = new ArrayList<>();

    @BeforeEach
    void setUp() throws IOException {
        dir = Files.createTempDirectory(Path.of("/dev/shm"), "rdmasim-proc-");
    }

    @AfterEach
    void tearDown() throws Exception {
        for (Process p : children) {
            p.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        }
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.deleteIfExists(f);
            }
        }
        Files.deleteIfExists(dir);
    }

    private record Child(Process process, BufferedReader out) {
        String expect(String prefix) throws IOException {
            String line;
            while ((line = out.readLine()) != null) {
                if (line.startsWith(prefix)) {
                    return line.substring(prefix.length()).trim();
                }
            }
            throw new AssertionError("the other process ended before printing " + prefix);
        }
    }

    private Child start(String... args) throws IOException {
        Set<String> cp = new LinkedHashSet<>();
        for (String prop : new String[] {"jdk.module.path", "java.class.path"}) {
            String v = System.getProperty(prop);
            if (v != null && !v.isBlank()) {
                cp.addAll(List.of(v.split(File.pathSeparator)));
            }
        }
        String build = System.getProperty("modemu.build.dir", "target");
        cp.add(Path.of(build, "test-classes").toString());
        cp.add(Path.of(build, "classes").toString());
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx256m",
                "-cp", String.join(File.pathSeparator, cp), MigrationPeerMain.class.getName()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectError(Path.of(build, "migration-peer-" + args[0] + "-" + System.nanoTime() + ".log").toFile()).start();
        children.add(p);
        return new Child(p, new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)));
    }

    private static Contributions transports() {
        return Contributions.builder().add(new RdmaSimTransport()).build();
    }

    @Test
    void aDestinationProcessKilledInTheMiddleFailsTheMigrationAndTheSourceRuns() throws Exception {
        Child dst = start("destination", "rdma-sim:127.0.0.1:0,shm=" + dir, Long.toString(RAM), dir.resolve("dst.ram").toString());
        String uri = dst.expect("LISTENING ");
        try (Machine src = Machine.builder().name("src").ram(RAM).vcpus(0).contributions(transports()).build(); LiveMigration lm = new LiveMigration(src)) {
            MemorySegment seg = src.memory().blocks().getFirst().segment();
            byte[] chunk = new byte[1 << 20];
            SplittableRandom r = new SplittableRandom(3);
            for (long off = 0; off < RAM; off += chunk.length) {
                r.nextBytes(chunk);
                MemorySegment.copy(MemorySegment.ofArray(chunk), 0, seg, off, chunk.length);
            }
            // a writer of guest RAM marks what it wrote: a page nobody marked migrates as zero
            src.memory().blocks().getFirst().dirty().mark(0, RAM);
            src.vmStart().join();
            lm.setParameters(lm.parameters().withMaxBandwidth(16L << 20));
            lm.migrate(uri + ",shm=" + dir);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (lm.info().ram() == null || lm.info().ram().transferred() < (4L << 20)) {
                assertThat(lm.completion()).as("still migrating: %s", lm.info()).isNotDone();
                assertThat(System.nanoTime()).isLessThan(deadline);
                Thread.sleep(5);
            }
            dst.process().destroyForcibly();
            MigrationInfo info = lm.completion().get(60, TimeUnit.SECONDS);
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).contains("closed the connection");
            assertThat(src.runState()).isEqualTo(RunState.RUNNING);
        }
    }

    @Test
    void aSourceProcessKilledInTheMiddleFailsTheIncomingMigrationAndTheDestinationDiscardsIt() throws Exception {
        Path ramFile = dir.resolve("dst.ram");
        try (Machine dst = Machine.builder().name("dst").ram(RAM).ramFile(ramFile).vcpus(0).initialState(RunState.INMIGRATE).contributions(transports()).build();
             LiveMigration lm = new LiveMigration(dst)) {
            String uri = lm.incoming("rdma-sim:127.0.0.1:0,shm=" + dir, new IncomingOptions(false, false));
            Child src = start("source", uri + ",shm=" + dir, Long.toString(RAM));
            src.expect("MIGRATING");
            src.process().destroyForcibly();
            MigrationInfo info = lm.completion().get(60, TimeUnit.SECONDS);
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).contains("closed the connection");
            assertThat(dst.runState()).as("the destination never runs a half-migrated VM").isNotEqualTo(RunState.RUNNING);
        }
    }
}
