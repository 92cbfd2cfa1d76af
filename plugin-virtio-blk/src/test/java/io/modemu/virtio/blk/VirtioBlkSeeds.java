package io.modemu.virtio.blk;

import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.machine.Machine;
import io.modemu.virtio.Virtio;
import java.util.LinkedHashMap;
import java.util.Map;

/** Well-formed guest programs, the fuzzer's starting points: a driver bringing the device up and issuing each kind of request. */
final class VirtioBlkSeeds {
    static final long RAM_BASE = Machine.RAM_BASE;
    static final long FEATURES = VirtioBlkGuest.DEFAULT_FEATURES | 1L << VirtioBlkGuest.F_DISCARD | 1L << VirtioBlkGuest.F_WRITE_ZEROES;

    private VirtioBlkSeeds() {
    }

    private static GuestProgram.Writer up(GuestProgram.Writer w, long features, int queueSize) {
        return w.bringUp(features, queueSize, RAM_BASE + VirtioBlkFuzzing.D, RAM_BASE + VirtioBlkFuzzing.A, RAM_BASE + VirtioBlkFuzzing.U);
    }

    /** A request at descriptor slots {@code slot..slot+2}: header, data, status; made available on queue 0 and notified. */
    private static GuestProgram.Writer request(GuestProgram.Writer w, int slot, int type, long sector, int dataLen, boolean deviceWrites) {
        long hdr = RAM_BASE + VirtioBlkFuzzing.B + slot * 0x100L;
        long data = RAM_BASE + VirtioBlkFuzzing.B + 0x10_0000 + slot * 0x1000L;
        long status = RAM_BASE + VirtioBlkFuzzing.B + 0x20_0000 + slot;
        w.header(hdr - RAM_BASE - VirtioBlkFuzzing.B, type, sector, sector, 8, 0);
        w.descriptor(slot, hdr, type == VirtioBlkGuest.T_DISCARD || type == VirtioBlkGuest.T_WRITE_ZEROES ? 32 : 16, Virtio.DESC_F_NEXT, slot + 1);
        if (dataLen > 0) {
            w.descriptor(slot + 1, data, dataLen, Virtio.DESC_F_NEXT | (deviceWrites ? Virtio.DESC_F_WRITE : 0), slot + 2);
            w.descriptor(slot + 2, status, 1, Virtio.DESC_F_WRITE, 0);
        } else {
            w.descriptor(slot + 1, status, 1, Virtio.DESC_F_WRITE, 0);
        }
        return w.push(0, slot).notifyQueue(0).run(50);
    }

    static Map<String, byte[]> all() {
        Map<String, byte[]> seeds = new LinkedHashMap<>();
        GuestProgram.Writer w = new GuestProgram.Writer().config(0, 1, true, 0, 0, false, false, 2).u8(1);
        up(w, FEATURES, 16);
        request(w, 0, VirtioBlkGuest.T_OUT, 0, 512, false);
        request(w, 3, VirtioBlkGuest.T_IN, 0, 512, true);
        request(w, 6, VirtioBlkGuest.T_FLUSH, 0, 0, false);
        request(w, 9, VirtioBlkGuest.T_GET_ID, 0, 20, true);
        request(w, 12, VirtioBlkGuest.T_DISCARD, 0, 0, false);
        seeds.put("each-request-kind", w.toBytes());

        w = new GuestProgram.Writer().config(1, 2, true, 2, 2, false, false, 3).u8(2);
        up(w, FEATURES & ~(1L << Virtio.F_EVENT_IDX), 64);
        request(w, 0, VirtioBlkGuest.T_IN, 8, 4096, true);
        w.u8(GuestProgram.DISK_FAULT).u8(1).u8(0).u8(0);
        request(w, 3, VirtioBlkGuest.T_OUT, 16, 4096, false);
        w.stopStart().run(200);
        request(w, 6, VirtioBlkGuest.T_WRITE_ZEROES, 0, 0, false);
        seeds.put("stop-on-error-and-stop-start-in-flight", w.toBytes());

        w = new GuestProgram.Writer().config(2, 1, false, 0, 0, true, false, 0).u8(3);
        up(w, FEATURES, 256);
        long table = RAM_BASE + VirtioBlkFuzzing.D + 0x1000;
        long hdr = RAM_BASE + VirtioBlkFuzzing.B;
        w.header(0, VirtioBlkGuest.T_IN, 0, 0, 0, 0);
        // an indirect table at slot 256 of area D: header, data, status
        w.descriptor(256, hdr, 16, Virtio.DESC_F_NEXT, 1);
        w.descriptor(257, hdr + 0x1000, 4096, Virtio.DESC_F_NEXT | Virtio.DESC_F_WRITE, 2);
        w.descriptor(258, hdr + 0x3000, 1, Virtio.DESC_F_WRITE, 0);
        w.descriptor(0, table, 48, Virtio.DESC_F_INDIRECT, 0);
        w.push(0, 0).notifyQueue(0).run(50);
        seeds.put("indirect-table-on-the-main-loop", w.toBytes());
        return seeds;
    }
}
