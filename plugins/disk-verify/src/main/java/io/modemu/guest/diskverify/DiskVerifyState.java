package io.modemu.guest.diskverify;

import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.machine.GuestMemory;

/**
 * disk-verify's state in guest RAM, and where everything else of it lies. From the start of RAM:
 * one page of state (a header and one 16-byte record per request slot), the virtio-blk driver's
 * state, the slots' data buffers, then the area it dirties.
 *
 * <p>A view: holds addresses only. Threads: the vCPU writes; anyone may read (status).
 */
final class DiskVerifyState {
    static final int MAX_DEPTH = 128;
    static final int PAGE = 4096;

    static final int PHASE_NEW = 0;
    static final int PHASE_RESETTING = 1;
    static final int PHASE_RUNNING = 2;
    static final int PHASE_NO_DISK = 3;
    static final int PHASE_FAILED = 4;

    static final int SLOT_FREE = 0;
    static final int SLOT_WRITING = 1;
    static final int SLOT_READING = 2;

    private static final int MAGIC = 0x59465644; // "DVFY"
    static final int O_MAGIC = 0;
    static final int O_VERSION = 4;
    static final int O_PHASE = 8;
    static final int O_DEPTH = 12;
    static final int O_MMIO = 16;
    static final int O_GENERATION = 24;
    static final int O_WRITE_CURSOR = 32;
    static final int O_READ_CURSOR = 40;
    static final int O_WRITES_DONE = 48;
    static final int O_READS_DONE = 56;
    static final int O_VERIFIED = 64;
    static final int O_FAILED = 72;
    static final int O_IO_ERRORS = 80;
    static final int O_DIRTY_CURSOR = 88;
    static final int O_DIRTY_LAST = 96;
    static final int O_DIRTY_BYTES = 104;
    static final int O_DIRTY_DEBT = 112;
    static final int O_FIRST_FAILURE = 120;
    static final int O_WRITES_TOTAL = 128;
    static final int O_READS_TOTAL = 136;
    static final int O_BLOCKS = 152;
    static final int O_BLOCK_SIZE = 160;
    static final int O_RATE = 168;
    static final int O_DIRTY_SIZE = 176;
    static final int O_FLAGS = 184;
    static final int O_QUEUE_SIZE = 188;
    static final int O_SLOTS = 192;

    final GuestMemory memory;
    final long base;

    DiskVerifyState(GuestMemory memory, long base) {
        this.memory = memory;
        this.base = base;
    }

    /** The driver's queue size for a configuration: room for every request, at least 16. */
    static int queueSize(DiskVerifyConfig c) {
        int descs = c.depth() * (c.indirect() ? 1 : 3);
        return Math.max(16, Integer.highestOneBit(descs - 1) << 1);
    }

    static VirtioBlkGuest.Setup setup(DiskVerifyConfig c) {
        return VirtioBlkGuest.Setup.defaults().withQueueSize(queueSize(c)).withIndirect(c.indirect());
    }

    static long driverOffset() {
        return PAGE;
    }

    static long buffersOffset(DiskVerifyConfig c) {
        return align(driverOffset() + VirtioBlkGuest.bytesNeeded(setup(c)), PAGE);
    }

    static long dirtyOffset(DiskVerifyConfig c) {
        return align(buffersOffset(c) + (long) c.depth() * c.blockSize(), PAGE);
    }

    /** Guest RAM the whole layout takes. */
    static long layoutBytes(DiskVerifyConfig c) {
        return dirtyOffset(c) + c.dirtySize();
    }

    private static long align(long v, long a) {
        return (v + a - 1) & -a;
    }

    boolean isPresent() {
        return memory.readU32(base + O_MAGIC) == MAGIC;
    }

    /** Lays out a fresh state for {@code c}. */
    void initialize(DiskVerifyConfig c) {
        memory.write(base, new byte[PAGE]);
        memory.writeU32(base + O_VERSION, 1);
        memory.writeU32(base + O_DEPTH, c.depth());
        memory.writeU64(base + O_GENERATION, 1);
        memory.writeU64(base + O_BLOCKS, c.blocks());
        memory.writeU32(base + O_BLOCK_SIZE, c.blockSize());
        memory.writeU64(base + O_RATE, c.dirtyRate());
        memory.writeU64(base + O_DIRTY_SIZE, c.dirtySize());
        memory.writeU32(base + O_FLAGS, c.indirect() ? 1 : 0);
        memory.writeU32(base + O_QUEUE_SIZE, queueSize(c));
        memory.writeU32(base + O_MAGIC, MAGIC);
    }

    /** The configuration stored in RAM (the one to follow after a migration). */
    DiskVerifyConfig config() {
        return new DiskVerifyConfig(u64(O_BLOCKS), (int) u32(O_BLOCK_SIZE), (int) u32(O_DEPTH), u64(O_RATE), u64(O_DIRTY_SIZE),
                (u32(O_FLAGS) & 1) != 0);
    }

    long u64(int field) {
        return memory.readU64(base + field);
    }

    void u64(int field, long v) {
        memory.writeU64(base + field, v);
    }

    long u32(int field) {
        return memory.readU32(base + field);
    }

    void u32(int field, long v) {
        memory.writeU32(base + field, v);
    }

    void add(int field, long delta) {
        u64(field, u64(field) + delta);
    }

    int phase() {
        return (int) u32(O_PHASE);
    }

    void phase(int p) {
        u32(O_PHASE, p);
    }

    int slotState(int slot) {
        return (int) memory.readU32(base + O_SLOTS + 16L * slot);
    }

    long slotBlock(int slot) {
        return memory.readU64(base + O_SLOTS + 16L * slot + 8);
    }

    void slot(int slot, int state, long block) {
        memory.writeU32(base + O_SLOTS + 16L * slot, state);
        memory.writeU64(base + O_SLOTS + 16L * slot + 8, block);
    }

    static String phaseName(int p) {
        return switch (p) {
            case PHASE_NEW -> "starting";
            case PHASE_RESETTING -> "resetting";
            case PHASE_RUNNING -> "running";
            case PHASE_NO_DISK -> "no-disk";
            case PHASE_FAILED -> "failed";
            default -> "unknown";
        };
    }
}
