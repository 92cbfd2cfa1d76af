package io.modemu.migration.tcp.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Source and destination in two processes ({@link ChildJvm}), each booted like an installation: the
 * platform on the module path, the packaged transport, file, virtio-blk and disk-verify plugins loaded
 * by the plugin host. The same scenarios for every transport (a subclass per transport gives its
 * {@link TransportFixture}): a migration with random RAM, a disk with I/O in flight and the
 * disk-verify guest, checked by RAM digests, the disk and the guest's own counts; and a process killed
 * (SIGKILL) in the middle, on either side.
 */
public abstract class TwoProcessScenarios {
    @TempDir
    protected Path dir;
    protected TransportFixture fixture;

    /** The transport under test; called once per test. */
    protected abstract TransportFixture newFixture() throws IOException;

    @BeforeEach
    void fixture() throws IOException {
        fixture = newFixture();
    }

    @AfterEach
    void closeFixture() {
        fixture.close();
    }

    private ChildJvm destination(List<String> common, String... more) throws IOException {
        List<String> args = new ArrayList<>(common);
        args.add("role=destination");
        args.addAll(fixture.childDestination(dir));
        args.addAll(List.of(more));
        return ChildJvm.start(Files.createDirectories(dir.resolve("dst")), "destination", args);
    }

    /** A source process, booting and warming up meanwhile; {@link #migrate} tells it where to. */
    private ChildJvm source(List<String> common, String... more) throws IOException {
        List<String> args = new ArrayList<>(common);
        args.add("role=source");
        args.add("to=stdin");
        args.addAll(List.of(more));
        return ChildJvm.start(Files.createDirectories(dir.resolve("src")), "source", args);
    }

    /** Once the destination listens, the source migrates to it. */
    private void migrate(ChildJvm src, String destinationUri) throws Exception {
        src.await("ready", Duration.ofMinutes(1));
        src.send(fixture.childSourceUri(destinationUri));
    }

    /** {@code HOST:PORT} of a URI: what an error about the peer names. */
    protected static String hostPort(String uri) {
        String rest = uri.substring(uri.indexOf(':') + 1);
        return rest.contains(",") ? rest.substring(0, rest.indexOf(',')) : rest;
    }

    @Test
    void migratesBetweenTwoProcessesWithRamDiskAndGuestIntact() throws Exception {
        List<String> common = List.of("ram=16M", "disk=" + TestVm.newDisk(dir, 4L << 20));
        try (ChildJvm dst = destination(common, "autostart=off", "run-after=300"); ChildJvm src = source(common, "random=8M", "warmup=200")) {
            String uri = dst.await("listening", Duration.ofMinutes(1));
            migrate(src, uri);
            assertThat(src.waitFor(Duration.ofMinutes(3))).as("source exit code; see %s", src.log()).isZero();
            assertThat(dst.waitFor(Duration.ofMinutes(3))).as("destination exit code; see %s", dst.log()).isZero();
            assertThat(src.value("transport-plugin")).as("the transport came from the plugin jar").isEqualTo(fixture.pluginId());
            assertThat(dst.value("transport-plugin")).isEqualTo(fixture.pluginId());
            assertThat(src.value("status")).isEqualTo("completed");
            assertThat(src.value("run-state")).isEqualTo("postmigrate");
            assertThat(dst.value("status")).isEqualTo("completed");
            assertThat(dst.value("ram-sha256")).as("destination RAM = source RAM at the stop").isEqualTo(src.value("ram-sha256"));
            assertThat(dst.value("disk-check")).isEqualTo("ok");
            assertThat(Long.parseLong(src.value("guest-verified"))).as("blocks the guest verified on the source").isPositive();
            assertThat(dst.value("guest-verified")).as("the guest's count travels in RAM").isEqualTo(src.value("guest-verified"));
            assertThat(src.value("guest-failures")).isEqualTo("0");
            assertThat(dst.value("run-state")).isEqualTo("running");
            assertThat(Long.parseLong(dst.value("guest-completed-after"))).as("requests the guest completed at the destination").isPositive();
            assertThat(Long.parseLong(dst.value("guest-verified-after"))).as("blocks the guest verified at the destination").isPositive();
            assertThat(dst.value("guest-failures")).isEqualTo("0");
            assertThat(dst.value("guest-io-errors")).isEqualTo("0");
            assertThat(dst.value("disk-check-after")).isEqualTo("ok");
            assertThat(Long.parseLong(src.value("downtime-ms"))).isNotNegative();
        }
    }

    @Test
    void destinationProcessKilledMidMigrationLeavesTheSourceRunningAndIntact() throws Exception {
        List<String> common = List.of("ram=16M", "disk=" + TestVm.newDisk(dir, 4L << 20));
        try (ChildJvm dst = destination(common); ChildJvm src = source(common, "random=8M", "max-bandwidth=4M")) {
            String uri = dst.await("listening", Duration.ofMinutes(1));
            migrate(src, uri);
            src.await("migrating", Duration.ofMinutes(1));
            Thread.sleep(1_000);
            dst.kill();
            assertThat(src.waitFor(Duration.ofMinutes(3))).as("source exit code (2: failed, intact); see %s", src.log()).isEqualTo(2);
            assertThat(src.value("status")).isEqualTo("failed");
            assertThat(src.value("error")).as("names the destination").contains(hostPort(uri));
            assertThat(src.value("run-state")).isEqualTo("running");
            assertThat(Long.parseLong(src.value("guest-verified"))).isPositive();
            assertThat(src.value("guest-failures")).isEqualTo("0");
            assertThat(src.value("disk-check")).isEqualTo("ok");
            assertThat(src.value("source-intact")).isEqualTo("true");
        }
    }

    @Test
    void sourceProcessKilledMidMigrationFailsTheDestinationWhichNeverRuns() throws Exception {
        List<String> common = List.of("ram=16M", "disk=" + TestVm.newDisk(dir, 4L << 20));
        try (ChildJvm dst = destination(common, "autostart=on"); ChildJvm src = source(common, "random=8M", "max-bandwidth=4M")) {
            String uri = dst.await("listening", Duration.ofMinutes(1));
            migrate(src, uri);
            src.await("migrating", Duration.ofMinutes(1));
            Thread.sleep(1_000);
            src.kill();
            assertThat(dst.waitFor(Duration.ofMinutes(3))).as("destination exit code; see %s", dst.log()).isEqualTo(1);
            assertThat(dst.value("status")).isEqualTo("failed");
            assertThat(dst.value("error")).isNotBlank();
            assertThat(dst.value("run-state")).as("the destination never runs a half-migrated VM").isEqualTo("inmigrate");
        }
    }
}
