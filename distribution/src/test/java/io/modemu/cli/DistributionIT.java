package io.modemu.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Unpacks the built modemu-VERSION.tar.gz and runs bin/modemu from it, as a user would. */
class DistributionIT {
    @TempDir
    static Path tmp;
    static Path home;
    static UnpackedDistribution dist;

    @BeforeAll
    static void unpack() throws Exception {
        dist = UnpackedDistribution.unpack(tmp);
        home = dist.home();
    }

    static UnpackedDistribution.Result modemu(String... args) throws IOException, InterruptedException {
        return dist.run(Map.of(), args);
    }

    @Test
    void theTarballHasTheLayoutOfAnInstallation() {
        assertThat(home.resolve("bin/modemu")).isExecutable();
        assertThat(home.resolve("conf/logback.xml")).isRegularFile();
        assertThat(home.resolve("lib/modemu-platform-0.1.0.jar")).isRegularFile();
        assertThat(home.resolve("plugins/modemu-plugin-file.jar")).isRegularFile();
        assertThat(home.resolve("plugins/enabled.txt")).exists();
        assertThat(home.resolve("plugins/disabled.txt")).exists();
        assertThat(home.resolve("README.md")).isRegularFile();
    }

    @Test
    void pluginsListsEachPluginWithIdVersionModuleAndContributions() throws Exception {
        UnpackedDistribution.Result r = modemu("plugins");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).containsPattern("file\\s+0\\.1\\.0\\s+io\\.modemu\\.block\\.file\\s+block drivers file, raw");
        assertThat(r.out()).containsPattern("null\\s+0\\.1\\.0\\s+io\\.modemu\\.block\\.nullco\\s+block drivers null-co, null");
    }

    @Test
    void disablingAPluginRemovesItUntilItIsEnabledAgain() throws Exception {
        UnpackedDistribution.Result d = modemu("plugins", "disable", "null");
        assertThat(d.exit()).as(d.err()).isZero();
        UnpackedDistribution.Result l = modemu("plugins", "list");
        assertThat(l.out()).doesNotContainPattern("null\\s+0\\.1\\.0").contains("Disabled:").contains("null (modemu-plugin-null.jar)");
        assertThat(modemu("plugins", "enable", "null").exit()).isZero();
        assertThat(modemu("plugins").out()).containsPattern("null\\s+0\\.1\\.0");
    }

    @Test
    void aBrokenPluginIsListedAsFailedAndTheOthersStillLoad() throws Exception {
        Path broken = home.resolve("plugins/broken.jar");
        Files.write(broken, "this is not a jar".getBytes(StandardCharsets.UTF_8));
        try {
            UnpackedDistribution.Result r = modemu("plugins");
            assertThat(r.exit()).isZero();
            assertThat(r.out()).containsPattern("file\\s+0\\.1\\.0").contains("Failed:")
                    .contains("plugin 'broken.jar' (broken.jar): not a readable jar: broken.jar");
        } finally {
            Files.delete(broken);
        }
    }

    @Test
    void aCommandThatCannotDoItsJobExitsNonZeroWithOneLine() throws Exception {
        UnpackedDistribution.Result r = modemu("plugins", "enable", "no-such-plugin");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err().strip()).isEqualTo("modemu: no plugin 'no-such-plugin' in " + home.resolve("plugins"));
        UnpackedDistribution.Result bad = modemu("plugins", "frobnicate");
        assertThat(bad.exit()).isNotZero();
        assertThat(bad.err()).contains("unknown action 'frobnicate'");
    }

    @Test
    void theDemoRunsEndToEndInShortModeFromTheTarball() throws Exception {
        UnpackedDistribution.Result r = modemu("demo", "--short");
        assertThat(r.exit()).as(r.out() + r.err()).isZero();
        assertThat(r.out()).contains("migrating over TCP").contains("guest carries on").contains("0 failed")
                .containsPattern("OK: every hop completed").containsPattern("tcp\\s+\\d+ ms");
        assertThat(r.out()).contains("back over rdma-sim").containsPattern("rdma-sim\\s+\\d+ ms");
    }

    @Test
    void theLauncherSaysClearlyWhenJava25IsMissing() throws Exception {
        ProcessBuilder pb = new ProcessBuilder(home.resolve("bin/modemu").toString(), "--version");
        pb.environment().put("JAVA_HOME", "/nonexistent");
        pb.environment().put("PATH", "/usr/bin:/bin");
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(30, TimeUnit.SECONDS);
        // on a machine whose /usr/lib/jvm holds a JDK 25 the launcher finds it there; otherwise it must say so
        if (p.exitValue() != 0) {
            assertThat(p.exitValue()).isEqualTo(127);
            assertThat(out).contains("modemu: needs Java 25 or newer");
        } else {
            assertThat(out).startsWith("modemu 0.1.0");
        }
    }
}
