package io.modemu.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The split-ring floor, built from its C source with the machine's compiler, driven as the benchmark does. */
class RingFloorTest {
    @TempDir
    static Path dir;
    static Path binary;

    @BeforeAll
    static void build() throws Exception {
        String cc = Stream.of("/usr/bin/cc", "/usr/bin/gcc", "/usr/local/bin/cc").filter(p -> Files.isExecutable(Path.of(p))).findFirst()
                .orElse(null);
        if (cc == null) {
            return;
        }
        binary = dir.resolve("ring-floor");
        Process p = new ProcessBuilder(cc, "-O2", "-Wall", "-Werror", "-pthread", "-o", binary.toString(), "src/main/c/ring_floor.c")
                .redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as("cc output: %s", output).isZero();
    }

    private static void needsTheBinary() {
        assumeTrue(binary != null, "no C compiler (apt-get install -y gcc): the split-ring floor cannot be built, this test is skipped");
    }

    private static Path disk(long bytes) throws IOException {
        Path f = Files.createTempFile(dir, "disk", ".img");
        byte[] block = new byte[1 << 16];
        for (int i = 0; i < block.length; i++) {
            block[i] = (byte) (i * 31);
        }
        try (var out = Files.newOutputStream(f)) {
            for (long n = 0; n < bytes; n += block.length) {
                out.write(block);
            }
        }
        return f;
    }

    @Test
    void eachTurnMeasuresTheReferenceAndTheModel() throws Exception {
        needsTheBinary();
        try (RingFloor floor = RingFloor.start(binary, disk(8 << 20), 8, 4096, 50)) {
            for (int i = 0; i < 3; i++) {
                RingFloor.Turn t = floor.turn();
                assertThat(t.referenceIops()).isPositive();
                assertThat(t.modelIops()).isPositive();
            }
        }
    }

    @Test
    void badArgumentsEndItWithAMessageAndTheTurnSaysSo() throws Exception {
        needsTheBinary();
        try (RingFloor floor = RingFloor.start(binary, disk(1 << 20), 0, 4096, 50)) {
            assertThatThrownBy(floor::turn).isInstanceOf(IOException.class).hasMessage("ring_floor ended with exit status 1");
        }
        try (RingFloor floor = RingFloor.start(binary, dir.resolve("no-such-file"), 8, 4096, 50)) {
            assertThatThrownBy(floor::turn).isInstanceOf(IOException.class).hasMessageStartingWith("ring_floor ended");
        }
    }

    @Test
    void anAnswerThatIsNotTwoFiguresIsRefused() {
        assertThatThrownBy(() -> RingFloor.parse("segmentation fault")).isInstanceOf(IOException.class)
                .hasMessage("ring_floor answered 'segmentation fault', expected reference_iops=N model_iops=N");
        assertThatThrownBy(() -> RingFloor.parse("reference_iops=0 model_iops=5")).isInstanceOf(IOException.class);
    }
}
