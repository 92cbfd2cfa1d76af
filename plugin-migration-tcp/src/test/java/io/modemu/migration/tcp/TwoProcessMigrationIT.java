package io.modemu.migration.tcp;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.migration.tcp.testbed.ChildJvm;
import io.modemu.migration.tcp.testbed.TestVm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Source and destination in two processes, each booted like an installation (platform on the module
 * path, the packaged migration-tcp, null and file plugins loaded by the plugin host), migrating over
 * loopback TCP with a live guest and a disk with I/O in flight.
 */
class TwoProcessMigrationIT {
    @TempDir
    Path dir;

    @Test
    void migratesBetweenTwoProcessesWithRamDiskAndGuestIntact() throws Exception {
        Path disk = TestVm.newDisk(dir, 8L << 20);
        List<String> common = List.of("ram=32M", "disk=" + disk, "guest-options=dirty-pages:16");
        try (ChildJvm dst = ChildJvm.start(Files.createDirectories(dir.resolve("dst")), "destination",
                concat(common, "role=destination", "autostart=off", "run-after=500"))) {
            String uri = dst.await("listening", Duration.ofMinutes(1));
            try (ChildJvm src = ChildJvm.start(Files.createDirectories(dir.resolve("src")), "source", concat(common, "role=source", "to=" + uri,
                    "random=16M", "warmup=500"))) {
                assertThat(src.waitFor(Duration.ofMinutes(3))).as("source exit code; see %s", src.log()).isZero();
                assertThat(dst.waitFor(Duration.ofMinutes(3))).as("destination exit code; see %s", dst.log()).isZero();
                assertThat(src.value("transport-plugin")).as("the tcp transport came from the plugin jar").isEqualTo("migration-tcp");
                assertThat(src.value("status")).isEqualTo("completed");
                assertThat(src.value("run-state")).isEqualTo("postmigrate");
                assertThat(dst.value("status")).isEqualTo("completed");
                assertThat(dst.value("ram-sha256")).as("destination RAM = source RAM at the stop").isEqualTo(src.value("ram-sha256"));
                assertThat(dst.value("disk-check")).isEqualTo("ok");
                assertThat(dst.value("run-state")).isEqualTo("running");
                assertThat(Long.parseLong(dst.value("guest-completed-after"))).as("requests the guest completed at the destination").isPositive();
                assertThat(Long.parseLong(dst.value("guest-verified-after"))).as("reads the guest verified at the destination").isPositive();
                assertThat(dst.value("guest-failures")).isEqualTo("0");
                assertThat(dst.value("disk-check-after")).isEqualTo("ok");
                assertThat(Long.parseLong(src.value("downtime-ms"))).isNotNegative();
            }
        }
    }

    @Test
    void destinationProcessKilledMidMigrationLeavesTheSourceRunningAndIntact() throws Exception {
        Path disk = TestVm.newDisk(dir, 8L << 20);
        List<String> common = List.of("ram=32M", "disk=" + disk);
        try (ChildJvm dst = ChildJvm.start(Files.createDirectories(dir.resolve("dst")), "destination", concat(common, "role=destination"))) {
            String uri = dst.await("listening", Duration.ofMinutes(1));
            try (ChildJvm src = ChildJvm.start(Files.createDirectories(dir.resolve("src")), "source", concat(common, "role=source", "to=" + uri,
                    "random=16M", "max-bandwidth=4M"))) {
                src.await("migrating", Duration.ofMinutes(1));
                Thread.sleep(1_000);
                dst.kill();
                assertThat(src.waitFor(Duration.ofMinutes(3))).as("source exit code (2: failed, intact); see %s", src.log()).isEqualTo(2);
                assertThat(src.value("status")).isEqualTo("failed");
                assertThat(src.value("error")).contains("tcp:" + uri.substring(4));
                assertThat(src.value("run-state")).isEqualTo("running");
                assertThat(src.value("guest-failures")).isEqualTo("0");
                assertThat(src.value("disk-check")).isEqualTo("ok");
                assertThat(src.value("source-intact")).isEqualTo("true");
            }
        }
    }

    private static List<String> concat(List<String> a, String... b) {
        List<String> out = new java.util.ArrayList<>(a);
        out.addAll(List.of(b));
        return out;
    }
}
