package io.modemu.migration.tcp;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.migration.IncomingOptions;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationParameters;
import io.modemu.migration.MigrationStatus;
import io.modemu.migration.tcp.testbed.FaultyProxy;
import io.modemu.migration.tcp.testbed.MigrationScenarios;
import io.modemu.migration.tcp.testbed.TransportFixture;
import org.junit.jupiter.api.Test;

/** The shared migration scenarios over loopback TCP, and what only TCP shows: a peer that stops reading. */
class TcpMigrationTest extends MigrationScenarios {
    @Override
    protected TransportFixture newFixture() {
        return new TcpFixture();
    }

    @Test
    void peerThatStopsReadingTimesOut() throws Exception {
        try (FaultyProxy proxy = new FaultyProxy(destination(IncomingOptions.defaults()).substring("tcp:".length())).stallAfter(1L << 20)) {
            src.migration.setParameters(MigrationParameters.defaults().withMaxBandwidth(0).withIoTimeoutMs(500));
            src.migration.migrate(proxy.uri());
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).contains("took no data for 500 ms");
            proxy.cutNow();
            assertSourceIntact(info);
        }
    }
}
