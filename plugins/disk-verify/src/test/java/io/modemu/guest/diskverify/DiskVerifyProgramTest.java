package io.modemu.guest.diskverify;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.aio.DeterministicScheduler;
import io.modemu.guest.GuestTask;
import io.modemu.machine.Machine;
import io.modemu.options.ConfigurationException;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import org.junit.jupiter.api.Test;

/** Loading disk-verify: options checked naming the culprit; with no disk it says so. (Runs on a device: see plugin-virtio-blk's tests.) */
class DiskVerifyProgramTest {
    private static Machine machine(long ram) {
        return Machine.builder().ram(ram).loopDriver(new DeterministicScheduler(1))
                .contributions(Contributions.builder().add(new DiskVerifyProgram()).build()).build();
    }

    @Test
    void badOptionsAreRefusedNamingTheOption() {
        try (Machine m = machine(8L << 20)) {
            assertThatThrownBy(() -> m.loadGuest("disk-verify", Options.parse("-guest", "block-size=1000", null)))
                    .isInstanceOf(ConfigurationException.class).hasMessageContaining("'block-size'");
            assertThatThrownBy(() -> m.loadGuest("disk-verify", Options.parse("-guest", "queue-depth=500", null)))
                    .hasMessageContaining("'queue-depth'");
            assertThatThrownBy(() -> m.loadGuest("disk-verify", Options.parse("-guest", "dirty-size=100", null)))
                    .hasMessageContaining("'dirty-size'");
            assertThatThrownBy(() -> m.loadGuest("disk-verify", Options.parse("-guest", "dirty-rate=fast", null)))
                    .hasMessageContaining("'dirty-rate'");
            assertThatThrownBy(() -> m.loadGuest("disk-verify", Options.parse("-guest", "speed=3", null)))
                    .hasMessageContaining("unknown option 'speed'");
        }
    }

    @Test
    void aLayoutLargerThanRamIsRefused() {
        try (Machine m = machine(1L << 20)) {
            assertThatThrownBy(() -> m.loadGuest("disk-verify", Options.parse("-guest", "dirty-size=4M", null)))
                    .hasMessageContaining("bytes of guest RAM");
        }
    }

    @Test
    void withoutADiskTheStatusSaysSo() {
        try (Machine m = machine(8L << 20)) {
            GuestTask t = m.loadGuest("disk-verify", Options.parse("-guest", "blocks=4", null));
            assertThat(t.status()).containsEntry("phase", "starting").containsEntry("verified", 0L);
            assertThat(t.step()).isEqualTo(GuestTask.HALT);
            assertThat(t.status()).containsEntry("phase", "no-disk").containsEntry("failed", 0L);
        }
    }
}
