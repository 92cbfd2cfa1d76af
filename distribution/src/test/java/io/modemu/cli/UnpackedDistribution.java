package io.modemu.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** The built modemu-VERSION.tar.gz unpacked into a directory, and bin/modemu run from it as a user would. */
final class UnpackedDistribution {
    /** What a run of bin/modemu gave: its exit code, standard output and standard error. */
    record Result(int exit, String out, String err) {
    }

    private final Path dir;
    private final Path home;

    private UnpackedDistribution(Path dir, Path home) {
        this.dir = dir;
        this.home = home;
    }

    /** Unpacks the tarball the build made ({@code modemu.dist.tarball}) into {@code dir}. */
    static UnpackedDistribution unpack(Path dir) throws IOException, InterruptedException {
        Path tarball = Path.of(System.getProperty("modemu.dist.tarball"));
        assertThat(tarball).exists();
        Process p = new ProcessBuilder("tar", "xzf", tarball.toString(), "-C", dir.toString()).inheritIO().start();
        assertThat(p.waitFor()).isZero();
        try (var s = Files.list(dir)) {
            return new UnpackedDistribution(dir, s.filter(d -> d.getFileName().toString().startsWith("modemu-")).findFirst().orElseThrow());
        }
    }

    /** The installation's directory (MODEMU_HOME). */
    Path home() {
        return home;
    }

    /**
     * Runs bin/modemu with {@code args}, this JVM's Java, the installation's own plugins and none of the
     * MODEMU_* settings of the environment, plus {@code env}; waits up to 300 s.
     */
    Result run(Map<String, String> env, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(home.resolve("bin/modemu").toString());
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().keySet().removeIf(k -> k.startsWith("MODEMU_"));
        pb.environment().putAll(env);
        Path out = Files.createTempFile(dir, "out", ".txt");
        Path err = Files.createTempFile(dir, "err", ".txt");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        Process p = pb.start();
        assertThat(p.waitFor(300, TimeUnit.SECONDS)).as("modemu %s finished", String.join(" ", args)).isTrue();
        return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
    }
}
