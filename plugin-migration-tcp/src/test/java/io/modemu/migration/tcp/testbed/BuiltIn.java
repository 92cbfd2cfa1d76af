package io.modemu.migration.tcp.testbed;

import io.modemu.block.file.FileBlockDriver;
import io.modemu.guest.diskverify.DiskVerifyProgram;
import io.modemu.migration.MigrationTransport;
import io.modemu.plugin.Contributions;
import io.modemu.virtio.blk.VirtioBlkDeviceType;

/**
 * Contributions built directly from the classes on the class path, for machines in the test's own
 * JVM: the stock {@code file} driver, {@code virtio-blk-device} and the {@code disk-verify} guest
 * program, the test bed's {@link SlowFileDriver}, and the transports given. (Processes started by
 * {@link MigrationLauncher} load the real plugin jars instead; keeping these references in this class
 * lets the rest of the test bed run without them on the class path.)
 */
public final class BuiltIn {
    private BuiltIn() {
    }

    public static Contributions contributions(MigrationTransport... transports) {
        Contributions.Builder b = Contributions.builder().add(new FileBlockDriver()).add(new SlowFileDriver()).add(new VirtioBlkDeviceType())
                .add(new DiskVerifyProgram());
        for (MigrationTransport t : transports) {
            b.add(t);
        }
        return b.build();
    }
}
