package io.modemu.machine;

import io.modemu.device.MmioDevice;
import io.modemu.options.ConfigurationException;
import java.util.ArrayList;
import java.util.List;

/**
 * The virt board's virtio-mmio transport slots: {@value #SLOTS} regions of 0x1000 bytes from
 * 0x1000_1000, slot {@code i} wired to interrupt line {@code i + 1}, as on QEMU's riscv64 {@code virt}
 * board. An empty slot answers like QEMU's empty virtio-mmio transport (magic, version 2, device id 0),
 * so a guest that probes every slot skips it.
 *
 * <p>Reads and writes run on vCPU threads; attaching runs on the main loop.
 */
public final class MmioBus {
    public static final long VIRTIO_MMIO_BASE = 0x1000_1000L;
    public static final long VIRTIO_MMIO_STRIDE = 0x1000L;
    public static final int SLOTS = 8;
    private static final long MAGIC = 0x74726976L;
    private static final long VENDOR_QEMU = 0x554d4551L;

    private final InterruptController interrupts;
    private final MmioDevice[] devices = new MmioDevice[SLOTS];
    private final String[] owners = new String[SLOTS];

    MmioBus(InterruptController interrupts) {
        this.interrupts = interrupts;
    }

    /** A claimed slot: where the device's registers are and which interrupt line it raises. */
    public record Slot(int index, long base, long size, IrqLine irq, String owner) {
    }

    /** Gives {@code device} the lowest free slot. */
    public synchronized Slot attach(String owner, MmioDevice device) {
        for (int i = 0; i < SLOTS; i++) {
            if (devices[i] == null) {
                devices[i] = device;
                owners[i] = owner;
                return new Slot(i, VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_STRIDE, VIRTIO_MMIO_STRIDE, interrupts.line(i + 1), owner);
            }
        }
        throw new ConfigurationException("device '" + owner + "': all " + SLOTS + " virtio-mmio slots are taken");
    }

    synchronized void detach(MmioDevice device) {
        for (int i = 0; i < SLOTS; i++) {
            if (devices[i] == device) {
                devices[i] = null;
                owners[i] = null;
            }
        }
    }

    /** The slots in use. */
    public synchronized List<Slot> slots() {
        List<Slot> out = new ArrayList<>();
        for (int i = 0; i < SLOTS; i++) {
            if (devices[i] != null) {
                out.add(new Slot(i, VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_STRIDE, VIRTIO_MMIO_STRIDE, interrupts.line(i + 1), owners[i]));
            }
        }
        return out;
    }

    private static int slotOf(long gpa) {
        long off = gpa - VIRTIO_MMIO_BASE;
        if (off < 0 || off >= SLOTS * VIRTIO_MMIO_STRIDE) {
            return -1;
        }
        return (int) (off / VIRTIO_MMIO_STRIDE);
    }

    /** A guest read of {@code size} bytes at {@code gpa}; unmapped addresses read as zero. */
    public long read(long gpa, int size) {
        int slot = slotOf(gpa);
        if (slot < 0) {
            return 0;
        }
        long off = gpa - VIRTIO_MMIO_BASE - slot * VIRTIO_MMIO_STRIDE;
        MmioDevice d = devices[slot];
        if (d != null) {
            return d.mmioRead(off, size);
        }
        return switch ((int) off) {
            case 0x000 -> MAGIC;
            case 0x004 -> 2;
            case 0x00c -> VENDOR_QEMU;
            default -> 0;
        };
    }

    /** A guest write; writes to unmapped addresses are ignored. */
    public void write(long gpa, int size, long value) {
        int slot = slotOf(gpa);
        if (slot < 0) {
            return;
        }
        MmioDevice d = devices[slot];
        if (d != null) {
            d.mmioWrite(gpa - VIRTIO_MMIO_BASE - slot * VIRTIO_MMIO_STRIDE, size, value);
        }
    }
}
