package io.modemu.migration.rdmasim;

import io.modemu.migration.tcp.testbed.MigrationScenarios;
import io.modemu.migration.tcp.testbed.TransportFixture;
import java.io.IOException;

/** The shared migration scenarios (the same code as tcp's) over rdma-sim: RAM one-sided into the destination's file-backed RAM. */
class RdmaSimScenariosTest extends MigrationScenarios {
    @Override
    protected TransportFixture newFixture() throws IOException {
        return new RdmaSimFixture();
    }
}
