package io.modemu.migration.tcp.testbed;

import io.modemu.block.file.FileBlockDriver;
import io.modemu.block.nullco.NullBlockDriver;
import io.modemu.migration.MigrationTransport;
import io.modemu.migration.tcp.TcpTransport;
import io.modemu.plugin.Contributions;

/**
 * Contributions built directly from the classes on the class path, for tests in one JVM: the tcp
 * transport, the stock block drivers and the test bed's device and guest program. (Processes started
 * by {@link MigrationLauncher} load the real plugin jars instead; keeping these references in this
 * class lets the rest of the test bed run without them.)
 */
public final class BuiltIn {
    private BuiltIn() {
    }

    public static Contributions contributions(MigrationTransport... extraTransports) {
        Contributions.Builder b = Contributions.builder().add(new TcpTransport()).add(new NullBlockDriver()).add(new FileBlockDriver());
        for (MigrationTransport t : extraTransports) {
            b.add(t);
        }
        return TestVm.addTestBed(b).build();
    }
}
