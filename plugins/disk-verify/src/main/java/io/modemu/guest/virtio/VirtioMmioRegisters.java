package io.modemu.guest.virtio;

import io.modemu.machine.MmioBus;

/**
 * A guest's view of one virtio-mmio register block (VIRTIO 1.2, 4.2.2): 32-bit register reads and
 * writes through the machine's MMIO space, exactly the accesses a guest kernel makes.
 *
 * <p>Holds no state besides the base address; thread affinity is the caller's (a vCPU).
 */
public final class VirtioMmioRegisters {
    public static final int MAGIC = 0x000;
    public static final int VERSION = 0x004;
    public static final int DEVICE_ID = 0x008;
    public static final int VENDOR_ID = 0x00c;
    public static final int DEVICE_FEATURES = 0x010;
    public static final int DEVICE_FEATURES_SEL = 0x014;
    public static final int DRIVER_FEATURES = 0x020;
    public static final int DRIVER_FEATURES_SEL = 0x024;
    public static final int QUEUE_SEL = 0x030;
    public static final int QUEUE_NUM_MAX = 0x034;
    public static final int QUEUE_NUM = 0x038;
    public static final int QUEUE_READY = 0x044;
    public static final int QUEUE_NOTIFY = 0x050;
    public static final int INTERRUPT_STATUS = 0x060;
    public static final int INTERRUPT_ACK = 0x064;
    public static final int STATUS = 0x070;
    public static final int QUEUE_DESC_LOW = 0x080;
    public static final int QUEUE_DESC_HIGH = 0x084;
    public static final int QUEUE_DRIVER_LOW = 0x090;
    public static final int QUEUE_DRIVER_HIGH = 0x094;
    public static final int QUEUE_DEVICE_LOW = 0x0a0;
    public static final int QUEUE_DEVICE_HIGH = 0x0a4;
    public static final int CONFIG_GENERATION = 0x0fc;
    public static final int CONFIG = 0x100;

    public static final long MAGIC_VALUE = 0x74726976L;

    public static final int STATUS_ACKNOWLEDGE = 1;
    public static final int STATUS_DRIVER = 2;
    public static final int STATUS_DRIVER_OK = 4;
    public static final int STATUS_FEATURES_OK = 8;
    public static final int STATUS_NEEDS_RESET = 0x40;
    public static final int STATUS_FAILED = 0x80;

    private final MmioBus bus;
    private final long base;

    public VirtioMmioRegisters(MmioBus bus, long base) {
        this.bus = bus;
        this.base = base;
    }

    public long base() {
        return base;
    }

    public int read(int register) {
        return (int) bus.read(base + register, 4);
    }

    public void write(int register, long value) {
        bus.write(base + register, 4, value & 0xffff_ffffL);
    }

    /** Reads {@code size} bytes (1, 2, 4 or 8) of device configuration space. */
    public long readConfig(int offset, int size) {
        return bus.read(base + CONFIG + offset, size);
    }

    /** A 64-bit configuration field read as two 32-bit halves, retried until the generation is stable (4.2.2.2). */
    public long readConfig64(int offset) {
        while (true) {
            int gen = read(CONFIG_GENERATION);
            long lo = readConfig(offset, 4) & 0xffff_ffffL;
            long hi = readConfig(offset + 4, 4) & 0xffff_ffffL;
            if (read(CONFIG_GENERATION) == gen) {
                return hi << 32 | lo;
            }
        }
    }

    /** The features the device offers (both 32-bit banks). */
    public long deviceFeatures() {
        write(DEVICE_FEATURES_SEL, 0);
        long lo = read(DEVICE_FEATURES) & 0xffff_ffffL;
        write(DEVICE_FEATURES_SEL, 1);
        long hi = read(DEVICE_FEATURES) & 0xffff_ffffL;
        return hi << 32 | lo;
    }

    public void writeDriverFeatures(long features) {
        write(DRIVER_FEATURES_SEL, 0);
        write(DRIVER_FEATURES, features);
        write(DRIVER_FEATURES_SEL, 1);
        write(DRIVER_FEATURES, features >>> 32);
    }

    /**
     * The base addresses of every virtio-mmio slot that holds a device with id {@code deviceId}, in slot
     * order: what a guest finds by probing (magic, version 2, device id).
     */
    public static long[] probe(MmioBus bus, int deviceId) {
        long[] found = new long[MmioBus.SLOTS];
        int n = 0;
        for (int slot = 0; slot < MmioBus.SLOTS; slot++) {
            VirtioMmioRegisters r = new VirtioMmioRegisters(bus, MmioBus.VIRTIO_MMIO_BASE + slot * MmioBus.VIRTIO_MMIO_STRIDE);
            if ((r.read(MAGIC) & 0xffff_ffffL) == MAGIC_VALUE && r.read(VERSION) == 2 && r.read(DEVICE_ID) == deviceId) {
                found[n++] = r.base();
            }
        }
        return java.util.Arrays.copyOf(found, n);
    }
}
