package io.modemu.migration.tcp;

import io.modemu.migration.tcp.testbed.TransportFixture;
import io.modemu.migration.tcp.testbed.TwoProcessScenarios;

/** The shared two-process scenarios over loopback TCP, with the packaged migration-tcp plugin. */
class TcpTwoProcessMigrationIT extends TwoProcessScenarios {
    @Override
    protected TransportFixture newFixture() {
        return new TcpFixture();
    }
}
