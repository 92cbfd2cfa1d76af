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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code bin/modemu aot-cache} in an installation unpacked from the built tarball: it records a JDK AOT
 * cache that later starts use, a cache made for other jars is left aside with a message that says how to
 * remake it, and the JVM's own complaints about a broken cache never reach standard output.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class AotCacheIT {
    @TempDir
    static Path tmp;
    static Path home;

    record Result(int exit, String out, String err) {
    }

    @BeforeAll
    static void unpack() throws Exception {
        Path tarball = Path.of(System.getProperty("modemu.dist.tarball"));
        Process p = new ProcessBuilder("tar", "xzf", tarball.toString(), "-C", tmp.toString()).inheritIO().start();
        assertThat(p.waitFor()).isZero();
        try (var s = Files.list(tmp)) {
            home = s.filter(d -> d.getFileName().toString().startsWith("modemu-")).findFirst().orElseThrow();
        }
    }

    static Result modemu(Map<String, String> env, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(home.resolve("bin/modemu").toString());
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("MODEMU_PLUGINS");
        pb.environment().remove("MODEMU_OPTS");
        pb.environment().remove("MODEMU_AOT");
        pb.environment().remove("MODEMU_AOT_CACHE");
        pb.environment().putAll(env);
        Path out = Files.createTempFile(tmp, "out", ".txt");
        Path err = Files.createTempFile(tmp, "err", ".txt");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        Process p = pb.start();
        assertThat(p.waitFor(300, TimeUnit.SECONDS)).as("modemu %s finished", String.join(" ", args)).isTrue();
        return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
    }

    private static final Map<String, String> LOG_AOT = Map.of("MODEMU_OPTS", "-Xlog:aot=info:stderr");

    @Test
    @Order(1)
    void withoutACacheNothingIsMappedAndNothingIsSaid() throws Exception {
        Result r = modemu(LOG_AOT, "--version");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).startsWith("modemu 0.1.0");
        assertThat(r.err()).doesNotContain("Opened AOT cache").doesNotContain("not using the AOT cache");
    }

    @Test
    @Order(2)
    void aotCacheRecordsACacheThatTheNextStartsUse() throws Exception {
        Result made = modemu(Map.of(), "aot-cache");
        assertThat(made.exit()).as(made.err()).isZero();
        assertThat(made.out()).as("the training's output goes to standard error").isEmpty();
        assertThat(made.err()).contains("modemu aot-cache: written " + home.resolve("lib/modemu.aot"));
        assertThat(home.resolve("lib/modemu.aot")).isNotEmptyFile();
        try (var s = Files.list(home.resolve("lib"))) {
            assertThat(s.map(f -> f.getFileName().toString())).as("no temporary files left").noneMatch(n -> n.contains(".tmp"));
        }

        Result used = modemu(LOG_AOT, "--version");
        assertThat(used.exit()).as(used.err()).isZero();
        assertThat(used.out()).startsWith("modemu 0.1.0");
        assertThat(used.err()).contains("Opened AOT cache " + home.resolve("lib/modemu.aot")).contains("Using AOT-linked classes: true");

        Result off = modemu(Map.of("MODEMU_OPTS", "-Xlog:aot=info:stderr", "MODEMU_AOT", "off"), "--version");
        assertThat(off.exit()).as(off.err()).isZero();
        assertThat(off.err()).doesNotContain("Opened AOT cache");
    }

    @Test
    @Order(3)
    void aCacheMadeForOtherJarsIsLeftAsideWithTheRemedy() throws Exception {
        Path stamp = home.resolve("lib/modemu.aot.stamp");
        String saved = Files.readString(stamp);
        Files.writeString(stamp, "0\n");
        try {
            Result r = modemu(LOG_AOT, "--version");
            assertThat(r.exit()).as(r.err()).isZero();
            assertThat(r.out()).startsWith("modemu 0.1.0");
            assertThat(r.err()).contains("not using the AOT cache " + home.resolve("lib/modemu.aot"))
                    .contains("remake it: modemu aot-cache").doesNotContain("Opened AOT cache");
        } finally {
            Files.writeString(stamp, saved);
        }
    }

    @Test
    @Order(4)
    void aBrokenCacheCostsAWarningOnStandardErrorNotTheCommandsOutput() throws Exception {
        Path cache = home.resolve("lib/modemu.aot");
        byte[] saved = Files.readAllBytes(cache);
        Files.writeString(cache, "not an AOT cache");
        try {
            Result r = modemu(Map.of(), "--version");
            assertThat(r.exit()).as(r.err()).isZero();
            assertThat(r.out()).as("standard output carries the command's output only").startsWith("modemu 0.1.0").doesNotContain("aot");
            assertThat(r.err()).contains("[aot]");
        } finally {
            Files.write(cache, saved);
        }
    }

    @Test
    @Order(5)
    void badSettingsAreRefusedByName() throws Exception {
        Result mode = modemu(Map.of("MODEMU_AOT", "yes"), "--version");
        assertThat(mode.exit()).isEqualTo(2);
        assertThat(mode.err()).contains("MODEMU_AOT='yes': expected auto or off");

        Result help = modemu(Map.of(), "--help");
        assertThat(help.out()).contains("aot-cache").doesNotContain("aot-train");

        Result extra = modemu(Map.of(), "aot-cache", "now");
        assertThat(extra.exit()).isEqualTo(2);
        assertThat(extra.err()).contains("modemu aot-cache: takes no arguments");
    }
}
