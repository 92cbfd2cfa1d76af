package io.modemu.virtio.blk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.options.ConfigurationException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** -device virtio-blk-device options: each mistake is refused naming the option, and nothing is left half-made. */
class VirtioBlkOptionsTest {
    private Harness h;

    @BeforeEach
    void machine() {
        h = Harness.simulated(1, 2);
        h.drive("d0", "size=1M");
    }

    @AfterEach
    void close() {
        h.close();
    }

    private void refused(String options, String message) {
        assertThatThrownBy(() -> h.device(options)).isInstanceOf(ConfigurationException.class).hasMessageContaining(message);
        assertThat(h.machine.devices()).isEmpty();
        assertThat(h.machine.mmio().slots()).isEmpty();
        assertThat(h.machine.states()).isEmpty();
        assertThat(h.machine.blockBackend("d0").attachedDevice()).as("the drive is free again").isNull();
    }

    @Test
    void mistakesAreRefusedNamingTheCulprit() {
        refused("iothread=io0", "option 'drive' is required");
        refused("drive=nope", "no drive 'nope'");
        refused("drive=d0,iothread=io9", "no IOThread 'io9'");
        refused("drive=d0,queue-size=100", "'queue-size' must be a power of two");
        refused("drive=d0,queue-size=2048", "'queue-size' must be between");
        refused("drive=d0,num-queues=0", "'num-queues' must be between");
        refused("drive=d0,werror=maybe", "'werror' must be one of report, ignore, stop, enospc");
        refused("drive=d0,rerror=enospc", "'rerror' cannot be enospc");
        refused("drive=d0,logical_block_size=1000", "'logical_block_size' must be a power of two");
        refused("drive=d0,colour=red", "unknown option 'colour'");
        refused("drive=d0,iothread=io0,iothread-vq-mapping.0.iothread=io1", "either 'iothread' or 'iothread-vq-mapping'");
        refused("drive=d0,iothread-vq-mapping.1.iothread=io1", "entry 0 is missing");
        refused("drive=d0,num-queues=2,iothread-vq-mapping.0.iothread=io0,iothread-vq-mapping.0.vqs.0=0", "assigns no IOThread to queue 1");
        refused("drive=d0,num-queues=2,iothread-vq-mapping.0.iothread=io0,iothread-vq-mapping.0.vqs.0=0,"
                + "iothread-vq-mapping.1.iothread=io1,iothread-vq-mapping.1.vqs.0=0", "assigns queue 0 twice");
    }

    @Test
    void aDriveServesOneDevice() {
        h.device("drive=d0");
        assertThatThrownBy(() -> h.device("drive=d0")).hasMessageContaining("already in use by device 'virtio-blk-device.0'");
    }

    @Test
    void explicitQueueMappingIsFollowed() {
        VirtioBlkDevice d = h.device("drive=d0,num-queues=3,iothread-vq-mapping.0.iothread=io1,iothread-vq-mapping.0.vqs.0=2,"
                + "iothread-vq-mapping.1.iothread=io0,iothread-vq-mapping.1.vqs.0=0,iothread-vq-mapping.1.vqs.1=1");
        assertThat(d.queueContexts()).containsExactly(h.machine.iothread("io0"), h.machine.iothread("io0"), h.machine.iothread("io1"));
    }
}
