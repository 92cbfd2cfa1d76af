package io.modemu.virtio.blk;

import static io.modemu.guest.virtio.VirtioMmioRegisters.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.guest.virtio.VirtioMmioRegisters;
import io.modemu.machine.MmioBus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The virtio-mmio v2 register file as a guest sees it, accessed register by register. */
class VirtioMmioRegistersTest {
    private Harness h;
    private VirtioMmioRegisters r;

    private void up(String drive, String device) {
        h = Harness.simulated(7, 1);
        h.drive("d0", drive);
        h.device("drive=d0" + (device.isEmpty() ? "" : "," + device));
        r = new VirtioMmioRegisters(h.machine.mmio(), h.device.slot().base());
    }

    @AfterEach
    void close() {
        if (h != null) {
            long errors = h.uncaughtErrors();
            h.close();
            assertThat(errors).isZero();
        }
    }

    @Test
    void identifiesAsAVersion2BlockDeviceFromQemuInTheFirstSlot() {
        up("size=1M", "");
        assertThat(h.device.slot().base()).isEqualTo(MmioBus.VIRTIO_MMIO_BASE);
        assertThat(h.device.slot().irq().number()).isEqualTo(1);
        assertThat(r.read(MAGIC) & 0xffff_ffffL).isEqualTo(0x74726976L);
        assertThat(r.read(VERSION)).isEqualTo(2);
        assertThat(r.read(DEVICE_ID)).isEqualTo(2);
        assertThat(r.read(VENDOR_ID) & 0xffff_ffffL).isEqualTo(0x554d4551L);
        assertThat(VirtioMmioRegisters.probe(h.machine.mmio(), 2)).containsExactly(MmioBus.VIRTIO_MMIO_BASE);
    }

    @Test
    void offersTheIssueFeatureSetInTwoBanks() {
        up("size=1M", "num-queues=2");
        long f = r.deviceFeatures();
        for (int bit : new int[] {VirtioBlkGuest.F_VERSION_1, VirtioBlkGuest.F_EVENT_IDX, VirtioBlkGuest.F_INDIRECT_DESC, VirtioBlkGuest.F_SIZE_MAX,
                VirtioBlkGuest.F_SEG_MAX, VirtioBlkGuest.F_BLK_SIZE, VirtioBlkGuest.F_FLUSH, VirtioBlkGuest.F_DISCARD,
                VirtioBlkGuest.F_WRITE_ZEROES, VirtioBlkGuest.F_MQ}) {
            assertThat(f & 1L << bit).as("feature bit %d", bit).isNotZero();
        }
        assertThat(f & 1L << VirtioBlkGuest.F_RO).as("RO on a writable drive").isZero();
        r.write(DEVICE_FEATURES_SEL, 2);
        assertThat(r.read(DEVICE_FEATURES)).as("bank 2").isZero();
    }

    @Test
    void configSpaceDescribesTheDiskInLittleEndian() {
        up("size=3M", "num-queues=3,queue-size=128");
        assertThat(r.readConfig64(VirtioBlkGuest.CFG_CAPACITY)).isEqualTo(3 * 2048);
        assertThat(r.readConfig(VirtioBlkGuest.CFG_BLK_SIZE, 4)).isEqualTo(512);
        assertThat(r.readConfig(VirtioBlkGuest.CFG_SEG_MAX, 4)).isEqualTo(126);
        assertThat(r.readConfig(VirtioBlkGuest.CFG_NUM_QUEUES, 2)).isEqualTo(3);
        assertThat(r.readConfig(VirtioBlkGuest.CFG_CAPACITY, 1)).as("low byte").isEqualTo((3 * 2048) & 0xff);
        assertThat(r.readConfig(VirtioBlkGuest.CFG_CAPACITY + 1, 1)).isEqualTo((3 * 2048) >> 8);
        assertThat(r.readConfig(40, 4)).as("max_discard_seg").isEqualTo(1);
        assertThat(r.readConfig(0x200, 4)).as("beyond the config space").isZero();
        assertThat(r.read(QUEUE_NUM_MAX)).isEqualTo(128);
        r.write(QUEUE_SEL, 3);
        assertThat(r.read(QUEUE_NUM_MAX)).as("no queue 3").isZero();
        assertThat(r.read(0x0b0)).as("SHMLenLow of a missing region").isEqualTo(-1);
    }

    @Test
    void aModernDriverAcceptingAFeatureNotOfferedDoesNotGetFeaturesOk() {
        up("size=1M", "");
        r.write(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        r.writeDriverFeatures(1L << 32 | 1L << 24);
        r.write(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        assertThat(r.read(STATUS) & STATUS_FEATURES_OK).isZero();
        r.writeDriverFeatures(1L << 32 | 1L << VirtioBlkGuest.F_FLUSH);
        r.write(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        assertThat(r.read(STATUS) & STATUS_FEATURES_OK).isNotZero();
        assertThat(h.device.transport().negotiatedFeatures()).isEqualTo(1L << 32 | 1L << VirtioBlkGuest.F_FLUSH);
    }

    @Test
    void aLegacyDriverHasUnofferedFeaturesMaskedAsQemuDoes() {
        up("size=1M", "");
        r.write(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        r.writeDriverFeatures(1L << 24 | 1L << VirtioBlkGuest.F_FLUSH);
        r.write(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        assertThat(r.read(STATUS) & STATUS_FEATURES_OK).isNotZero();
        assertThat(h.device.transport().negotiatedFeatures()).isEqualTo(1L << VirtioBlkGuest.F_FLUSH);
    }

    @Test
    void statusHandshakeReadsBackAndResetClearsEverything() {
        up("size=1M", "");
        h.start();
        VirtioBlkGuest g = h.guest(VirtioBlkGuest.Setup.defaults());
        assertThat(r.read(STATUS)).isEqualTo(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
        assertThat(r.read(QUEUE_READY)).isEqualTo(1);
        assertThat(g.has(VirtioBlkGuest.F_VERSION_1)).isTrue();
        r.write(STATUS, 0);
        h.awaitTrue(() -> r.read(STATUS) == 0, "reset completes");
        assertThat(r.read(QUEUE_READY)).isZero();
        assertThat(h.device.transport().negotiatedFeatures()).isZero();
        // and the device comes up again
        h.guest(VirtioBlkGuest.Setup.defaults());
        assertThat(r.read(STATUS) & STATUS_DRIVER_OK).isNotZero();
    }

    @Test
    void interruptStatusIsAcknowledgedAndTheLineFollowsIt() {
        up("size=1M", "iothread=io0");
        h.start();
        VirtioBlkGuest g = h.guest(VirtioBlkGuest.Setup.defaults());
        g.queue(0).enableInterrupt();
        g.submit(0, VirtioBlkGuest.T_FLUSH, 0, 0, 0, false, 1);
        g.kick(0);
        h.awaitTrue(() -> h.device.slot().irq().isRaised(), "the used-buffer interrupt");
        assertThat(r.read(INTERRUPT_STATUS)).isEqualTo(1);
        r.write(INTERRUPT_ACK, 1);
        assertThat(r.read(INTERRUPT_STATUS)).isZero();
        assertThat(h.device.slot().irq().isRaised()).isFalse();
    }

    @Test
    void narrowRegisterAccessesAreIgnored() {
        up("size=1M", "");
        assertThat(h.machine.mmio().read(h.device.slot().base() + MAGIC, 2)).isZero();
        h.machine.mmio().write(h.device.slot().base() + STATUS, 1, STATUS_ACKNOWLEDGE);
        assertThat(r.read(STATUS)).isZero();
    }
}
