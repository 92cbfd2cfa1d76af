package io.modemu.migration.tcp;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.machine.RunState;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.MigrationCapability;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationStatus;
import io.modemu.migration.tcp.testbed.DiskWriter;
import io.modemu.migration.tcp.testbed.TestVm;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Two machines in one JVM migrating over loopback TCP, with a live guest, a dataplane disk with I/O in flight and random RAM. */
class LiveMigrationTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "multifd={0}")
    @ValueSource(booleans = {false, true})
    void destinationHoldsTheSourceRamAtTheStopEveryAcknowledgedWriteAndTheGuestCarriesOn(boolean multifd) throws Exception {
        TestVm.Spec spec = new TestVm.Spec();
        spec.name = "src";
        spec.ram = 32L << 20;
        spec.disk = TestVm.newDisk(dir, 8L << 20);
        spec.guestOptions.put("dirty-pages", "16");
        try (TestVm src = TestVm.create(spec); TestVm dst = TestVm.create(spec.destination("dst"))) {
            src.fillRandom(42);
            src.start();
            src.awaitGuestProgress(500, Duration.ofSeconds(30));

            String uri = dst.migration.incoming("tcp:127.0.0.1:0", new IncomingOptions(false, false));
            src.migration.setParameters(src.migration.parameters().withMaxBandwidth(0));
            if (multifd) {
                src.migration.setCapability(MigrationCapability.MULTIFD, true);
            }
            src.migration.migrate(uri);
            MigrationInfo info = src.migration.completion().get(60, TimeUnit.SECONDS);
            MigrationInfo dstInfo = dst.migration.completion().get(10, TimeUnit.SECONDS);

            assertThat(info.status()).as("source: %s", info).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(dstInfo.status()).as("destination: %s", dstInfo).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(src.machine.runState()).isEqualTo(RunState.POSTMIGRATE);
            assertThat(dst.machine.runState()).as("no autostart: the destination stays paused").isEqualTo(RunState.PAUSED);
            assertThat(TestVm.ramMismatch(src.machine, dst.machine)).as("first differing RAM offset").isEqualTo(-1);
            assertThat(dst.checkDisk()).isNull();
            DiskWriter.State atStop = dst.guest();
            assertThat(atStop.failures()).isZero();

            assertThat(info.downtimeMs()).isNotNull().isGreaterThanOrEqualTo(0);
            assertThat(info.totalTimeMs()).isGreaterThanOrEqualTo(info.downtimeMs());
            assertThat(info.ram().transferred()).isGreaterThan(spec.ram / 2);
            assertThat(info.ram().normal()).isPositive();
            assertThat(info.ram().duplicate()).isPositive();
            assertThat(info.ram().dirtySyncCount()).isGreaterThanOrEqualTo(2);
            assertThat(info.ram().remaining()).isZero();
            if (multifd) {
                assertThat(info.ram().multifdBytes()).isGreaterThan(spec.ram / 2);
            } else {
                assertThat(info.ram().multifdBytes()).isZero();
            }
            assertThat(src.migrationStatuses()).containsExactly("setup", "active", "device", "completed");
            assertThat(src.events).anyMatch(e -> e.name().equals("MIGRATION_PASS"));
            Map<String, Object> qmp = info.toQmp();
            assertThat(qmp).containsKeys("status", "total-time", "downtime", "setup-time", "ram").doesNotContainKey("error-desc");

            dst.start();
            DiskWriter.State later = dst.awaitGuestProgress(1_000, Duration.ofSeconds(30));
            assertThat(later.readsVerified()).as("reads verified at the destination").isGreaterThan(atStop.readsVerified());
            assertThat(later.failures()).isZero();
            dst.machine.vmStop(RunState.PAUSED).join();
            assertThat(dst.checkDisk()).isNull();
            assertThat(dst.guest().failures()).isZero();
        }
    }
}
