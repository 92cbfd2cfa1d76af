package io.modemu.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.options.ConfigurationException;
import io.modemu.plugin.Contributions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** QEMU's names, defaults, ranges and reply shapes, and the errors of the migration commands. */
class MigrationShapesTest {
    @Test
    void parametersHaveQemusDefaultsAndNames() {
        MigrationParameters p = MigrationParameters.defaults();
        assertThat(p.toQmp()).containsExactly(Map.entry("downtime-limit", 300L), Map.entry("max-bandwidth", 128L << 20),
                Map.entry("multifd-channels", 2), Map.entry("cpu-throttle-initial", 20), Map.entry("cpu-throttle-increment", 10),
                Map.entry("max-cpu-throttle", 99), Map.entry("throttle-trigger-threshold", 50), Map.entry("x-io-timeout", 10_000L),
                Map.entry("x-timeout", 0L));
    }

    @Test
    void setParametersChangesOnlyWhatIsGivenAndChecksRangesWithQemusWording() {
        MigrationParameters p = MigrationParameters.defaults().withQmp(Map.of("downtime-limit", 50L, "multifd-channels", 4));
        assertThat(p.downtimeLimitMs()).isEqualTo(50);
        assertThat(p.multifdChannels()).isEqualTo(4);
        assertThat(p.maxBandwidth()).isEqualTo(128L << 20);
        assertThatThrownBy(() -> p.withQmp(Map.of("downtime-limit", 2_000_001L))).hasMessage(
                "Parameter 'downtime-limit' expects an integer in the range of 0 to 2000000 milliseconds");
        assertThatThrownBy(() -> p.withQmp(Map.of("multifd-channels", 0L))).hasMessage("Parameter 'multifd-channels' expects an integer in the range of 1 to 255");
        assertThatThrownBy(() -> p.withQmp(Map.of("max-bandwidth", "fast"))).hasMessage("Invalid parameter type for 'max-bandwidth', expected: integer");
        assertThatThrownBy(() -> p.withQmp(Map.of("compress-level", 1L))).hasMessage("Parameter 'compress-level' is unexpected");
    }

    @Test
    void capabilitiesUseQemusNames() {
        assertThat(MigrationCapability.fromName("auto-converge")).isEqualTo(MigrationCapability.AUTO_CONVERGE);
        assertThat(MigrationCapability.fromName("multifd")).isEqualTo(MigrationCapability.MULTIFD);
        assertThatThrownBy(() -> MigrationCapability.fromName("postcopy-ram")).hasMessage(
                "Capability 'postcopy-ram' is not supported by Modemu (supported: auto-converge, multifd)");
    }

    @Test
    void queryMigrateShapesFollowQemu() {
        assertThat(MigrationInfo.none().toQmp()).isEmpty();
        MigrationInfo failed = new MigrationInfo(MigrationStatus.FAILED, null, null, null, null, null, null, "destination failed: x");
        assertThat(failed.toQmp()).containsExactly(Map.entry("status", "failed"), Map.entry("error-desc", "destination failed: x"));
        MigrationInfo.Ram ram = new MigrationInfo.Ram(10, 0, 4096, 1, 2, 8192, 1.5, 3, 100, 7, 0, 10, 0);
        MigrationInfo done = new MigrationInfo(MigrationStatus.COMPLETED, 100L, 5L, 3L, null, ram, null, null);
        Map<String, Object> q = done.toQmp();
        assertThat(q).containsKeys("status", "ram", "total-time", "downtime", "setup-time").doesNotContainKeys("expected-downtime", "error-desc");
        @SuppressWarnings("unchecked")
        Map<String, Object> r = (Map<String, Object>) q.get("ram");
        assertThat(r).containsKeys("transferred", "remaining", "total", "duplicate", "skipped", "normal", "normal-bytes", "dirty-pages-rate", "mbps",
                "dirty-sync-count", "postcopy-requests", "page-size", "multifd-bytes", "pages-per-second", "precopy-bytes", "downtime-bytes",
                "postcopy-bytes");
        assertThat(r.get("mbps")).isInstanceOf(Double.class);
        assertThat(r.get("page-size")).isEqualTo(4096L);
        assertThat(MigrationStatus.CANCELLING.qapiName()).isEqualTo("cancelling");
    }

    @Test
    void commandsThatCannotRunSayWhy() {
        try (Machine m = Machine.builder().ram(1 << 20).vcpus(0).contributions(Contributions.builder().add(new PipeTransport(false)).build()).build();
             LiveMigration lm = new LiveMigration(m)) {
            assertThatThrownBy(() -> lm.migrate("4444")).isInstanceOf(MigrationException.class)
                    .hasMessage("migration URI '4444' has no scheme (expected for example tcp:HOST:PORT)");
            assertThatThrownBy(() -> lm.migrate("rdma-sim:host:1")).isInstanceOf(ConfigurationException.class)
                    .hasMessageContaining("no migration scheme 'rdma-sim'").hasMessageContaining("available: pipe");
            assertThatThrownBy(() -> lm.incoming("pipe:x", IncomingOptions.defaults())).isInstanceOf(MigrationException.class)
                    .hasMessageContaining("needs the VM in state 'inmigrate'").hasMessageContaining("'prelaunch'");
            assertThat(lm.info().status()).isEqualTo(MigrationStatus.NONE);
            assertThat(lm.capabilitiesQmp()).containsExactly(Map.of("capability", "auto-converge", "state", false),
                    Map.of("capability", "multifd", "state", false));
        }
        try (Machine m = Machine.builder().ram(1 << 20).vcpus(0).initialState(RunState.INMIGRATE)
                .contributions(Contributions.builder().add(new PipeTransport(false)).build()).build(); LiveMigration lm = new LiveMigration(m)) {
            assertThatThrownBy(() -> lm.migrate("pipe:y")).isInstanceOf(MigrationException.class).hasMessage("Guest is waiting for an incoming migration");
            lm.incoming("pipe:z", IncomingOptions.defaults());
            assertThat(lm.info().status()).isEqualTo(MigrationStatus.SETUP);
            assertThatThrownBy(() -> lm.setCapability(MigrationCapability.MULTIFD, true)).hasMessage("There's a migration process in progress");
            assertThatThrownBy(() -> lm.incoming("pipe:z2", IncomingOptions.defaults())).hasMessage("The incoming migration has already been started");
            lm.cancel();
            assertThat(lm.completion().join().status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(m.runState()).isEqualTo(RunState.INMIGRATE);
        }
        assertThat(List.of(MigrationStatus.values())).extracting(MigrationStatus::qapiName).containsExactly("none", "setup", "active", "device",
                "completed", "failed", "cancelling", "cancelled");
    }
}
