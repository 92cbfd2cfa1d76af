package io.modemu.virtio.blk;

/** Numbers of the virtio block device (VIRTIO 1.2, 5.2): feature bits, request types, status values, configuration layout. */
public final class VirtioBlk {
    private VirtioBlk() {
    }

    public static final int DEVICE_ID = 2;

    // ---- features (5.2.3) ----
    public static final int F_SIZE_MAX = 1;
    public static final int F_SEG_MAX = 2;
    public static final int F_GEOMETRY = 4;
    public static final int F_RO = 5;
    public static final int F_BLK_SIZE = 6;
    public static final int F_FLUSH = 9;
    public static final int F_TOPOLOGY = 10;
    public static final int F_CONFIG_WCE = 11;
    public static final int F_MQ = 12;
    public static final int F_DISCARD = 13;
    public static final int F_WRITE_ZEROES = 14;

    // ---- request types (5.2.6) ----
    public static final int T_IN = 0;
    public static final int T_OUT = 1;
    /** Legacy: a SCSI command, never supported here. */
    public static final int T_SCSI_CMD = 2;
    public static final int T_FLUSH = 4;
    /** Legacy spelling of FLUSH with the OUT bit (5.2.6.3). */
    public static final int T_FLUSH_OUT = 5;
    public static final int T_GET_ID = 8;
    public static final int T_GET_LIFETIME = 10;
    public static final int T_DISCARD = 11;
    public static final int T_WRITE_ZEROES = 13;
    public static final int T_SECURE_ERASE = 14;
    /** Legacy: the barrier flag, ignored as QEMU does. */
    public static final int T_BARRIER = 0x8000_0000;

    /** Flag of a discard / write-zeroes segment: the device may deallocate. */
    public static final int WRITE_ZEROES_FLAG_UNMAP = 1;

    // ---- status byte ----
    public static final int S_OK = 0;
    public static final int S_IOERR = 1;
    public static final int S_UNSUPP = 2;

    public static final int SECTOR_SIZE = 512;
    public static final int SECTOR_SHIFT = 9;
    /** Bytes a GET_ID answer holds at most. */
    public static final int ID_BYTES = 20;
    /** Size of the request header (type, reserved, sector). */
    public static final int HEADER_BYTES = 16;
    /** Size of one discard / write-zeroes segment (sector, num_sectors, flags). */
    public static final int DWZ_SEGMENT_BYTES = 16;

    // ---- configuration space offsets (struct virtio_blk_config) ----
    public static final int CFG_CAPACITY = 0;
    public static final int CFG_SIZE_MAX = 8;
    public static final int CFG_SEG_MAX = 12;
    public static final int CFG_BLK_SIZE = 20;
    public static final int CFG_WRITEBACK = 32;
    public static final int CFG_NUM_QUEUES = 34;
    public static final int CFG_MAX_DISCARD_SECTORS = 36;
    public static final int CFG_MAX_DISCARD_SEG = 40;
    public static final int CFG_DISCARD_SECTOR_ALIGNMENT = 44;
    public static final int CFG_MAX_WRITE_ZEROES_SECTORS = 48;
    public static final int CFG_MAX_WRITE_ZEROES_SEG = 52;
    public static final int CFG_WRITE_ZEROES_MAY_UNMAP = 56;
    /** The configuration space up to and including write_zeroes_may_unmap and its padding. */
    public static final int CONFIG_SIZE = 60;
}
