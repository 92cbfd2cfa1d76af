package io.modemu.virtio.blk;

import static io.modemu.guest.virtio.VirtioBlkGuest.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.guest.virtio.GuestVirtQueue;
import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.machine.GuestMemory;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Every request type, through the guest-side driver, with the data checked on both sides. */
class VirtioBlkRequestTest {
    private Harness h;

    @AfterEach
    void noEscapedErrors() {
        if (h != null) {
            long errors = h.uncaughtErrors();
            String first = h.firstUncaught();
            h.close();
            assertThat(errors).as("errors escaped into an event loop, first: %s", first).isZero();
        }
    }

    private VirtioBlkGuest up(String driveOptions, String deviceOptions, VirtioBlkGuest.Setup setup) {
        h = Harness.simulated(42, 1);
        h.drive("d0", driveOptions);
        h.device("drive=d0" + (deviceOptions.isEmpty() ? "" : "," + deviceOptions));
        h.start();
        return h.guest(setup);
    }

    private static byte[] pattern(int len, long seed) {
        byte[] b = new byte[len];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Test
    void writtenDataReadsBackAndLandsOnTheDisk() {
        VirtioBlkGuest g = up("size=1M,store=s1", "iothread=io0", VirtioBlkGuest.Setup.defaults());
        GuestMemory mem = h.machine.memory();
        byte[] data = pattern(8192, 1);
        mem.write(Harness.buffer(0), data);
        Completions c = new Completions();
        g.submit(0, T_OUT, 16, Harness.buffer(0), 8192, false, 1);
        g.kick(0);
        c.awaitCount(h, g, 0, 1);
        assertThat(c.status(1)).isEqualTo(S_OK);
        byte[] onDisk = h.disks.store("s1").asSlice(16 * 512, 8192).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        assertThat(onDisk).isEqualTo(data);
        g.submit(0, T_IN, 16, Harness.buffer(1), 8192, true, 2);
        g.kick(0);
        c.awaitCount(h, g, 0, 2);
        assertThat(c.status(2)).isEqualTo(S_OK);
        assertThat(c.byTag.get(2L).usedLen()).as("used length: data and status byte").isEqualTo(8193);
        assertThat(mem.read(Harness.buffer(1), 8192)).isEqualTo(data);
        assertThat(h.device.backend().stats().writeBytes()).isEqualTo(8192);
        assertThat(h.device.backend().stats().readBytes()).isEqualTo(8192);
    }

    @Test
    void readsAndWritesWorkWithIndirectDescriptors() {
        VirtioBlkGuest g = up("size=1M", "iothread=io0", VirtioBlkGuest.Setup.defaults().withIndirect(true));
        assertThat(g.usesIndirect()).isTrue();
        GuestMemory mem = h.machine.memory();
        Completions c = new Completions();
        for (int i = 0; i < 32; i++) {
            mem.write(Harness.buffer(i), pattern(4096, i));
            g.submit(0, T_OUT, 8L * i, Harness.buffer(i), 4096, false, i);
        }
        g.kick(0);
        c.awaitCount(h, g, 0, 32);
        for (int i = 0; i < 32; i++) {
            g.submit(0, T_IN, 8L * i, Harness.buffer(40 + i), 4096, true, 100 + i);
        }
        g.kick(0);
        c.awaitCount(h, g, 0, 64);
        for (int i = 0; i < 32; i++) {
            assertThat(c.status(100 + i)).isEqualTo(S_OK);
            assertThat(mem.read(Harness.buffer(40 + i), 4096)).as("block %d", i).isEqualTo(pattern(4096, i));
        }
    }

    @Test
    void flushReachesTheBackend() {
        VirtioBlkGuest g = up("size=1M", "iothread=io0", VirtioBlkGuest.Setup.defaults());
        assertThat(g.has(F_FLUSH)).isTrue();
        Completions c = new Completions();
        g.submit(0, T_FLUSH, 0, 0, 0, false, 7);
        g.kick(0);
        c.awaitCount(h, g, 0, 1);
        assertThat(c.status(7)).isEqualTo(S_OK);
        assertThat(h.disks.count(TestDiskDriver.Op.FLUSH)).isEqualTo(1);
    }

    @Test
    void getIdAnswersTheSerialNulTerminatedWhenShorterThan20Bytes() {
        VirtioBlkGuest g = up("size=1M", "serial=disk-42", VirtioBlkGuest.Setup.defaults());
        GuestMemory mem = h.machine.memory();
        mem.write(Harness.buffer(0), pattern(20, 3));
        Completions c = new Completions();
        g.submit(0, T_GET_ID, 0, Harness.buffer(0), 20, true, 1);
        g.kick(0);
        c.awaitCount(h, g, 0, 1);
        assertThat(c.status(1)).isEqualTo(S_OK);
        byte[] id = mem.read(Harness.buffer(0), 20);
        assertThat(new String(id, 0, 7, StandardCharsets.US_ASCII)).isEqualTo("disk-42");
        assertThat(id[7]).isZero();
    }

    @Test
    void getIdTruncatesALongSerialTo20BytesWithoutNul() {
        VirtioBlkGuest g = up("size=1M", "serial=0123456789abcdefghijKLMN", VirtioBlkGuest.Setup.defaults());
        Completions c = new Completions();
        g.submit(0, T_GET_ID, 0, Harness.buffer(0), 20, true, 1);
        g.kick(0);
        c.awaitCount(h, g, 0, 1);
        assertThat(new String(h.machine.memory().read(Harness.buffer(0), 20), StandardCharsets.US_ASCII)).isEqualTo("0123456789abcdefghij");
    }

    @Test
    void writeZeroesZeroesTheRangeAndNothingElse() {
        VirtioBlkGuest g = up("size=1M", "iothread=io0", VirtioBlkGuest.Setup.defaults());
        assertThat(g.has(F_WRITE_ZEROES)).isTrue();
        GuestMemory mem = h.machine.memory();
        byte[] data = pattern(4096, 5);
        mem.write(Harness.buffer(0), data);
        Completions c = new Completions();
        g.submit(0, T_OUT, 0, Harness.buffer(0), 4096, false, 1);
        g.kick(0);
        c.awaitCount(h, g, 0, 1);
        g.submitRange(0, T_WRITE_ZEROES, 2, 3, 1 /* UNMAP: allowed for write zeroes */, 2);
        g.kick(0);
        c.awaitCount(h, g, 0, 2);
        assertThat(c.status(2)).isEqualTo(S_OK);
        g.submit(0, T_IN, 0, Harness.buffer(1), 4096, true, 3);
        g.kick(0);
        c.awaitCount(h, g, 0, 3);
        byte[] expected = data.clone();
        Arrays.fill(expected, 2 * 512, 5 * 512, (byte) 0);
        assertThat(mem.read(Harness.buffer(1), 4096)).isEqualTo(expected);
    }

    @Test
    void discardCompletesButRejectsTheUnmapFlag() {
        VirtioBlkGuest g = up("size=1M", "iothread=io0", VirtioBlkGuest.Setup.defaults());
        assertThat(g.has(F_DISCARD)).isTrue();
        Completions c = new Completions();
        g.submitRange(0, T_DISCARD, 8, 8, 0, 1);
        g.submitRange(0, T_DISCARD, 8, 8, 1, 2);
        g.submitRange(0, T_WRITE_ZEROES, 8, 8, 2, 3);
        g.kick(0);
        c.awaitCount(h, g, 0, 3);
        assertThat(c.status(1)).isEqualTo(S_OK);
        assertThat(c.status(2)).as("discard with UNMAP").isEqualTo(S_UNSUPP);
        assertThat(c.status(3)).as("write zeroes with an unknown flag").isEqualTo(S_UNSUPP);
        assertThat(h.disks.count(TestDiskDriver.Op.DISCARD)).isEqualTo(1);
    }

    @Test
    void discardAndWriteZeroesAreUnsupportedWhenNotNegotiated() {
        VirtioBlkGuest g = up("size=1M", "", VirtioBlkGuest.Setup.defaults()
                .withFeatures(DEFAULT_FEATURES & ~(1L << F_DISCARD) & ~(1L << F_WRITE_ZEROES)));
        Completions c = new Completions();
        g.submitRange(0, T_DISCARD, 0, 8, 0, 1);
        g.submitRange(0, T_WRITE_ZEROES, 0, 8, 0, 2);
        g.kick(0);
        c.awaitCount(h, g, 0, 2);
        assertThat(c.status(1)).isEqualTo(S_UNSUPP);
        assertThat(c.status(2)).isEqualTo(S_UNSUPP);
    }

    @Test
    void unknownRequestTypesAreUnsupported() {
        VirtioBlkGuest g = up("size=1M", "iothread=io0", VirtioBlkGuest.Setup.defaults());
        Completions c = new Completions();
        g.submit(0, 99, 0, 0, 0, false, 1);
        g.submit(0, 10 /* GET_LIFETIME, not offered */, 0, Harness.buffer(0), 64, true, 2);
        g.submit(0, 2 /* legacy SCSI command */, 0, 0, 0, false, 3);
        g.kick(0);
        c.awaitCount(h, g, 0, 3);
        assertThat(c.status(1)).isEqualTo(S_UNSUPP);
        assertThat(c.status(2)).isEqualTo(S_UNSUPP);
        assertThat(c.status(3)).isEqualTo(S_UNSUPP);
        assertThat(h.device.transport().isBroken()).isFalse();
    }

    @Test
    void aReadOnlyDriveOffersRoAndFailsWritesWithIoErr() {
        VirtioBlkGuest g = up("size=1M,read-only=on", "iothread=io0", VirtioBlkGuest.Setup.defaults());
        assertThat(g.has(F_RO)).isTrue();
        Completions c = new Completions();
        g.submit(0, T_OUT, 0, Harness.buffer(0), 512, false, 1);
        g.submitRange(0, T_WRITE_ZEROES, 0, 1, 0, 2);
        g.submitRange(0, T_DISCARD, 0, 1, 0, 3);
        g.submit(0, T_IN, 0, Harness.buffer(1), 512, true, 4);
        g.kick(0);
        c.awaitCount(h, g, 0, 4);
        assertThat(c.status(1)).isEqualTo(S_IOERR);
        assertThat(c.status(2)).isEqualTo(S_IOERR);
        assertThat(c.status(3)).isEqualTo(S_IOERR);
        assertThat(c.status(4)).isEqualTo(S_OK);
        assertThat(h.disks.count(TestDiskDriver.Op.WRITE)).isZero();
    }

    @Test
    void sectorsBeyondTheCapacityAndPartialSectorsFailWithIoErr() {
        VirtioBlkGuest g = up("size=1M", "iothread=io0", VirtioBlkGuest.Setup.defaults());
        long sectors = g.capacity();
        assertThat(sectors).isEqualTo(2048);
        Completions c = new Completions();
        g.submit(0, T_IN, sectors, Harness.buffer(0), 512, true, 1);
        g.submit(0, T_IN, sectors - 1, Harness.buffer(0), 1024, true, 2);
        g.submit(0, T_OUT, -1L, Harness.buffer(0), 512, false, 3);
        g.submit(0, T_IN, 0, Harness.buffer(0), 100, true, 4);
        g.submitRange(0, T_WRITE_ZEROES, sectors - 1, 2, 0, 5);
        g.submit(0, T_IN, sectors - 1, Harness.buffer(0), 512, true, 6);
        g.kick(0);
        c.awaitCount(h, g, 0, 6);
        assertThat(c.status(1)).isEqualTo(S_IOERR);
        assertThat(c.status(2)).isEqualTo(S_IOERR);
        assertThat(c.status(3)).isEqualTo(S_IOERR);
        assertThat(c.status(4)).isEqualTo(S_IOERR);
        assertThat(c.status(5)).isEqualTo(S_IOERR);
        assertThat(c.status(6)).as("the last sector").isEqualTo(S_OK);
        assertThat(h.device.transport().isBroken()).isFalse();
    }

    @Test
    void headerAndDataMaySpreadOverAnyDescriptorLayout() {
        VirtioBlkGuest g = up("size=1M", "iothread=io0", VirtioBlkGuest.Setup.defaults());
        GuestMemory mem = h.machine.memory();
        GuestVirtQueue vq = g.queue(0);
        byte[] data = pattern(3 * 512, 9);
        // header split 4 + 12 bytes, then data in 3 pieces (the first glued to the end of the header), status alone
        long hdr = Harness.buffer(10);
        mem.writeU32(hdr, T_OUT);
        mem.writeU32(hdr + 4, 0);
        mem.writeU64(hdr + 8, 40);
        mem.write(hdr + 16, Arrays.copyOfRange(data, 0, 100));
        mem.write(Harness.buffer(11), Arrays.copyOfRange(data, 100, 1000));
        mem.write(Harness.buffer(12), Arrays.copyOfRange(data, 1000, 1536));
        long status = Harness.buffer(13);
        mem.writeU8(status, 0xff);
        int head = vq.alloc(5);
        int d = head;
        vq.setDesc(d, hdr, 4, GuestVirtQueue.DESC_F_NEXT);
        d = vq.next(d);
        vq.setDesc(d, hdr + 4, 12 + 100, GuestVirtQueue.DESC_F_NEXT);
        d = vq.next(d);
        vq.setDesc(d, Harness.buffer(11), 900, GuestVirtQueue.DESC_F_NEXT);
        d = vq.next(d);
        vq.setDesc(d, Harness.buffer(12), 536, GuestVirtQueue.DESC_F_NEXT);
        d = vq.next(d);
        vq.setDesc(d, status, 1, GuestVirtQueue.DESC_F_WRITE);
        vq.add(head);
        vq.kick();
        h.awaitTrue(() -> vq.hasUsed(), "the hand-made request completes");
        assertThat(vq.nextUsed() >>> 32).isEqualTo(head);
        vq.free(head);
        assertThat(mem.readU8(status)).isEqualTo(S_OK);
        Completions c = new Completions();
        g.submit(0, T_IN, 40, Harness.buffer(20), 1536, true, 1);
        g.kick(0);
        c.awaitCount(h, g, 0, 1);
        assertThat(mem.read(Harness.buffer(20), 1536)).isEqualTo(data);
    }

    @Test
    void worksWithoutEventIdxThroughTheRingFlags() {
        VirtioBlkGuest g = up("size=1M,latency-ns=5us", "iothread=io0", VirtioBlkGuest.Setup.defaults()
                .withFeatures(DEFAULT_FEATURES & ~(1L << F_EVENT_IDX)));
        assertThat(g.has(F_EVENT_IDX)).isFalse();
        Completions c = new Completions();
        for (int round = 0; round < 4; round++) {
            for (int i = 0; i < 30; i++) {
                g.submit(0, T_IN, i, Harness.buffer(i), 512, true, round * 100L + i);
            }
            g.kick(0);
            c.awaitCount(h, g, 0, (round + 1) * 30);
        }
        assertThat(c.byTag.values()).allMatch(d -> d.status() == S_OK);
    }

    @Test
    void aLegacyDriverWithoutVersion1WorksLikeQemu() {
        // features the device does not offer are masked for a legacy driver instead of refusing FEATURES_OK
        VirtioBlkGuest g = up("size=1M", "iothread=io0", VirtioBlkGuest.Setup.defaults()
                .withFeatures((DEFAULT_FEATURES & ~(1L << F_VERSION_1)) | 1L << 24));
        assertThat(g.has(F_VERSION_1)).isFalse();
        GuestMemory mem = h.machine.memory();
        mem.write(Harness.buffer(0), pattern(512, 11));
        Completions c = new Completions();
        g.submit(0, T_OUT | 0x8000_0000, 3, Harness.buffer(0), 512, false, 1); // legacy barrier flag, ignored
        g.submit(0, 5 /* legacy FLUSH_OUT */, 0, 0, 0, false, 2);
        g.kick(0);
        c.awaitCount(h, g, 0, 2);
        g.submit(0, T_IN, 3, Harness.buffer(1), 512, true, 3);
        g.kick(0);
        c.awaitCount(h, g, 0, 3);
        assertThat(c.status(1)).isEqualTo(S_OK);
        assertThat(c.status(2)).isEqualTo(S_OK);
        assertThat(h.disks.count(TestDiskDriver.Op.FLUSH)).isEqualTo(1);
        assertThat(mem.read(Harness.buffer(1), 512)).isEqualTo(pattern(512, 11));
    }

    @Test
    void manyRequestsInFlightAllComplete() {
        VirtioBlkGuest g = up("size=4M,latency-ns=20us", "iothread=io0,queue-size=256", VirtioBlkGuest.Setup.defaults().withQueueSize(256));
        Completions c = new Completions();
        for (int i = 0; i < 80; i++) {
            assertThat(g.submit(0, T_IN, 8L * i, Harness.buffer(i % 64), 4096, true, i)).isNotNegative();
        }
        g.kick(0);
        h.awaitTrue(() -> h.device.inFlight() >= 64, "64 requests in flight");
        c.awaitCount(h, g, 0, 80);
        assertThat(c.byTag.values()).allMatch(d -> d.status() == S_OK);
        assertThat(h.device.inFlight()).isZero();
    }
}
