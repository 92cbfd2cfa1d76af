package io.modemu.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
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
    static UnpackedDistribution dist;

    @BeforeAll
    static void unpack() throws Exception {
        dist = UnpackedDistribution.unpack(tmp);
        home = dist.home();
    }

    static UnpackedDistribution.Result modemu(Map<String, String> env, String... args) throws IOException, InterruptedException {
        return dist.run(env, args);
    }

    private static final Map<String, String> LOG_AOT = Map.of("MODEMU_OPTS", "-Xlog:aot=info:stderr");

    @Test
    @Order(1)
    void withoutACacheNothingIsMappedAndNothingIsSaid() throws Exception {
        UnpackedDistribution.Result r = modemu(LOG_AOT, "--version");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).startsWith("modemu 0.1.0");
        assertThat(r.err()).doesNotContain("Opened AOT cache").doesNotContain("not using the AOT cache");
    }

    @Test
    @Order(2)
    void aotCacheRecordsACacheThatTheNextStartsUse() throws Exception {
        UnpackedDistribution.Result made = modemu(Map.of(), "aot-cache");
        assertThat(made.exit()).as(made.err()).isZero();
        assertThat(made.out()).as("the training's output goes to standard error").isEmpty();
        assertThat(made.err()).contains("modemu aot-cache: written " + home.resolve("lib/modemu.aot"));
        assertThat(home.resolve("lib/modemu.aot")).isNotEmptyFile();
        try (var s = Files.list(home.resolve("lib"))) {
            assertThat(s.map(f -> f.getFileName().toString())).as("no temporary files left").noneMatch(n -> n.contains(".tmp"));
        }

        UnpackedDistribution.Result used = modemu(LOG_AOT, "--version");
        assertThat(used.exit()).as(used.err()).isZero();
        assertThat(used.out()).startsWith("modemu 0.1.0");
        assertThat(used.err()).contains("Opened AOT cache " + home.resolve("lib/modemu.aot")).contains("Using AOT-linked classes: true");

        UnpackedDistribution.Result off = modemu(Map.of("MODEMU_OPTS", "-Xlog:aot=info:stderr", "MODEMU_AOT", "off"), "--version");
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
            UnpackedDistribution.Result r = modemu(LOG_AOT, "--version");
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
            UnpackedDistribution.Result r = modemu(Map.of(), "--version");
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
        UnpackedDistribution.Result mode = modemu(Map.of("MODEMU_AOT", "yes"), "--version");
        assertThat(mode.exit()).isEqualTo(2);
        assertThat(mode.err()).contains("MODEMU_AOT='yes': expected auto or off");

        UnpackedDistribution.Result help = modemu(Map.of(), "--help");
        assertThat(help.out()).contains("aot-cache").doesNotContain("aot-train");

        UnpackedDistribution.Result extra = modemu(Map.of(), "aot-cache", "now");
        assertThat(extra.exit()).isEqualTo(2);
        assertThat(extra.err()).contains("modemu aot-cache: takes no arguments");
    }
}
