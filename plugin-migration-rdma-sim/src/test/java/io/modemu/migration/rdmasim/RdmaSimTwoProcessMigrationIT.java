package io.modemu.migration.rdmasim;

import io.modemu.migration.tcp.testbed.TransportFixture;
import io.modemu.migration.tcp.testbed.TwoProcessScenarios;
import java.io.IOException;

/** The shared two-process scenarios (the same code as tcp's) over rdma-sim, with the packaged migration-rdma-sim plugin. */
class RdmaSimTwoProcessMigrationIT extends TwoProcessScenarios {
    @Override
    protected TransportFixture newFixture() throws IOException {
        return new RdmaSimFixture();
    }
}
