package io.modemu.virtio;

/**
 * Numbers from the VIRTIO 1.2 specification that the transport and the devices share: device
 * status bits (2.1), reserved feature bits (6), split-ring flags (2.7) and virtio-mmio register
 * offsets (4.2.2).
 */
public final class Virtio {
    private Virtio() {
    }

    // ---- device status (2.1) ----
    public static final int STATUS_ACKNOWLEDGE = 1;
    public static final int STATUS_DRIVER = 2;
    public static final int STATUS_DRIVER_OK = 4;
    public static final int STATUS_FEATURES_OK = 8;
    public static final int STATUS_DEVICE_NEEDS_RESET = 0x40;
    public static final int STATUS_FAILED = 0x80;

    // ---- reserved feature bits (6) ----
    /** Legacy only: the driver may put the header and data in any descriptor layout. */
    public static final int F_ANY_LAYOUT = 27;
    public static final int F_INDIRECT_DESC = 28;
    public static final int F_EVENT_IDX = 29;
    public static final int F_VERSION_1 = 32;

    // ---- split virtqueue (2.7) ----
    public static final int DESC_F_NEXT = 1;
    public static final int DESC_F_WRITE = 2;
    public static final int DESC_F_INDIRECT = 4;
    public static final int AVAIL_F_NO_INTERRUPT = 1;
    public static final int USED_F_NO_NOTIFY = 1;
    public static final int DESC_SIZE = 16;

    // ---- virtio-mmio registers (4.2.2) ----
    public static final long MMIO_MAGIC_VALUE = 0x74726976L;
    public static final int MMIO_VERSION = 2;
    /** What QEMU puts in VendorID ("QEMU"), which existing guests look for. */
    public static final long MMIO_VENDOR_QEMU = 0x554d4551L;

    public static final int R_MAGIC = 0x000;
    public static final int R_VERSION = 0x004;
    public static final int R_DEVICE_ID = 0x008;
    public static final int R_VENDOR_ID = 0x00c;
    public static final int R_DEVICE_FEATURES = 0x010;
    public static final int R_DEVICE_FEATURES_SEL = 0x014;
    public static final int R_DRIVER_FEATURES = 0x020;
    public static final int R_DRIVER_FEATURES_SEL = 0x024;
    public static final int R_QUEUE_SEL = 0x030;
    public static final int R_QUEUE_NUM_MAX = 0x034;
    public static final int R_QUEUE_NUM = 0x038;
    public static final int R_QUEUE_READY = 0x044;
    public static final int R_QUEUE_NOTIFY = 0x050;
    public static final int R_INTERRUPT_STATUS = 0x060;
    public static final int R_INTERRUPT_ACK = 0x064;
    public static final int R_STATUS = 0x070;
    public static final int R_QUEUE_DESC_LOW = 0x080;
    public static final int R_QUEUE_DESC_HIGH = 0x084;
    public static final int R_QUEUE_DRIVER_LOW = 0x090;
    public static final int R_QUEUE_DRIVER_HIGH = 0x094;
    public static final int R_QUEUE_DEVICE_LOW = 0x0a0;
    public static final int R_QUEUE_DEVICE_HIGH = 0x0a4;
    public static final int R_SHM_SEL = 0x0ac;
    public static final int R_SHM_LEN_LOW = 0x0b0;
    public static final int R_SHM_LEN_HIGH = 0x0b4;
    public static final int R_SHM_BASE_LOW = 0x0b8;
    public static final int R_SHM_BASE_HIGH = 0x0bc;
    public static final int R_QUEUE_RESET = 0x0c0;
    public static final int R_CONFIG_GENERATION = 0x0fc;
    public static final int R_CONFIG = 0x100;

    /** InterruptStatus bit: a used buffer was added. */
    public static final int INT_VRING = 1;
    /** InterruptStatus bit: the configuration (or the status, for DEVICE_NEEDS_RESET) changed. */
    public static final int INT_CONFIG = 2;

    /** Whether {@code features} has bit {@code bit}. */
    public static boolean has(long features, int bit) {
        return (features & (1L << bit)) != 0;
    }

    /**
     * The split ring's event-index test (2.7.7.2, {@code vring_need_event}): whether moving an index
     * from {@code oldIdx} to {@code newIdx} crossed {@code eventIdx}. All values are 16-bit.
     */
    public static boolean needEvent(int eventIdx, int newIdx, int oldIdx) {
        return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
    }
}
