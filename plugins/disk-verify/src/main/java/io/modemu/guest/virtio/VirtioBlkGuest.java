package io.modemu.guest.virtio;

import io.modemu.machine.GuestMemory;
import io.modemu.machine.MmioBus;

/**
 * A guest-side virtio-blk driver, in the spirit of QEMU's libqos: it brings a device up through its
 * registers exactly as a guest kernel does (reset, ACKNOWLEDGE, DRIVER, feature negotiation,
 * FEATURES_OK, queues, DRIVER_OK), keeps many requests in flight on one or more queues, and takes
 * completions from the used rings; the caller waits for them with interrupts.
 *
 * <p>All of its state lives in guest RAM from {@code stateGpa} (a header, then per queue: the ring,
 * one 64-byte request slot per descriptor — header, discard segment, status byte, the caller's tag —
 * and, with indirect descriptors, one 3-entry table per descriptor), so the driver survives a
 * migration with the VM: {@link #attach} rebuilds this view from RAM.
 *
 * <p>Threads: one guest CPU at a time (a vCPU, or a test standing in for one). Every call is
 * non-blocking; a reset completes asynchronously, so {@link #beginReset} and {@link #resetDone} are
 * separate.
 */
public final class VirtioBlkGuest {
    public static final int DEVICE_ID = 2;

    public static final int F_SIZE_MAX = 1;
    public static final int F_SEG_MAX = 2;
    public static final int F_RO = 5;
    public static final int F_BLK_SIZE = 6;
    public static final int F_FLUSH = 9;
    public static final int F_MQ = 12;
    public static final int F_DISCARD = 13;
    public static final int F_WRITE_ZEROES = 14;
    public static final int F_INDIRECT_DESC = 28;
    public static final int F_EVENT_IDX = 29;
    public static final int F_VERSION_1 = 32;

    public static final int T_IN = 0;
    public static final int T_OUT = 1;
    public static final int T_FLUSH = 4;
    public static final int T_GET_ID = 8;
    public static final int T_DISCARD = 11;
    public static final int T_WRITE_ZEROES = 13;

    public static final int S_OK = 0;
    public static final int S_IOERR = 1;
    public static final int S_UNSUPP = 2;
    /** What the status byte holds until the device writes it. */
    public static final int S_PENDING = 0xff;

    public static final int CFG_CAPACITY = 0;
    public static final int CFG_SIZE_MAX = 8;
    public static final int CFG_SEG_MAX = 12;
    public static final int CFG_BLK_SIZE = 20;
    public static final int CFG_NUM_QUEUES = 34;

    /** The features this driver understands (it asks for these and takes what the device offers of them). */
    public static final long DEFAULT_FEATURES = bit(F_VERSION_1) | bit(F_EVENT_IDX) | bit(F_INDIRECT_DESC) | bit(F_BLK_SIZE) | bit(F_FLUSH)
            | bit(F_RO) | bit(F_DISCARD) | bit(F_WRITE_ZEROES) | bit(F_MQ) | bit(F_SEG_MAX) | bit(F_SIZE_MAX);

    private static final int MAGIC = 0x31474256; // "VBG1"
    private static final int S_MAGIC = 0;
    private static final int S_NUM_QUEUES = 4;
    private static final int S_MMIO = 8;
    private static final int S_FEATURES = 16;
    private static final int S_CAPACITY = 24;
    private static final int S_BLK_SIZE = 32;
    private static final int S_QUEUE_SIZE = 36;
    private static final int S_FLAGS = 40;
    private static final int S_QUEUE_BYTES = 44;
    private static final int HEADER = 64;
    private static final int FLAG_INDIRECT = 1;

    private static final int SLOT = 64;
    private static final int SLOT_HEADER = 0;
    private static final int SLOT_SEGMENT = 16;
    private static final int SLOT_STATUS = 32;
    private static final int SLOT_TAG = 40;
    private static final int INDIRECT_TABLE = 48;

    /** Receives completions from {@link #poll}. */
    @FunctionalInterface
    public interface Completion {
        /**
         * @param tag     what the caller passed to submit
         * @param status  the status byte the device wrote ({@link #S_OK}, {@link #S_IOERR}, {@link #S_UNSUPP})
         * @param usedLen the length the device reported in the used element
         */
        void completed(long tag, int status, int usedLen);
    }

    /** How to bring a device up. */
    public record Setup(long features, int numQueues, int queueSize, boolean indirect) {
        public static Setup defaults() {
            return new Setup(DEFAULT_FEATURES, 1, 128, false);
        }

        public Setup withFeatures(long f) {
            return new Setup(f, numQueues, queueSize, indirect);
        }

        public Setup withQueues(int n) {
            return new Setup(features, n, queueSize, indirect);
        }

        public Setup withQueueSize(int n) {
            return new Setup(features, numQueues, n, indirect);
        }

        public Setup withIndirect(boolean on) {
            return new Setup(features, numQueues, queueSize, on);
        }
    }

    private final GuestMemory memory;
    private final VirtioMmioRegisters regs;
    private final long state;
    private final GuestVirtQueue[] queues;
    private final long[] slots;
    private final long[] tables;
    private final boolean indirect;
    private final long features;
    private final long capacity;
    private final int blkSize;

    private VirtioBlkGuest(GuestMemory memory, MmioBus bus, long state) {
        this.memory = memory;
        this.state = state;
        this.regs = new VirtioMmioRegisters(bus, memory.readU64(state + S_MMIO));
        int nq = (int) memory.readU32(state + S_NUM_QUEUES);
        int qsize = (int) memory.readU32(state + S_QUEUE_SIZE);
        long perQueue = memory.readU32(state + S_QUEUE_BYTES);
        this.indirect = (memory.readU32(state + S_FLAGS) & FLAG_INDIRECT) != 0;
        this.features = memory.readU64(state + S_FEATURES);
        this.capacity = memory.readU64(state + S_CAPACITY);
        this.blkSize = (int) memory.readU32(state + S_BLK_SIZE);
        this.queues = new GuestVirtQueue[nq];
        this.slots = new long[nq];
        this.tables = new long[nq];
        for (int q = 0; q < nq; q++) {
            long qbase = state + HEADER + q * perQueue;
            queues[q] = GuestVirtQueue.attach(memory, bus, qbase);
            slots[q] = align(qbase + GuestVirtQueue.bytesNeeded(qsize), 64);
            tables[q] = slots[q] + (long) SLOT * qsize;
        }
    }

    private static long bit(int b) {
        return 1L << b;
    }

    private static long align(long v, long a) {
        return (v + a - 1) & -a;
    }

    private static long perQueueBytes(int queueSize, boolean indirect) {
        long b = align(GuestVirtQueue.bytesNeeded(queueSize), 64) + (long) SLOT * queueSize;
        if (indirect) {
            b += (long) INDIRECT_TABLE * queueSize;
        }
        return align(b, 64);
    }

    /** Guest RAM the driver needs for {@code setup}, from a 64-byte aligned address. */
    public static long bytesNeeded(Setup setup) {
        return HEADER + setup.numQueues() * perQueueBytes(setup.queueSize(), setup.indirect());
    }

    /** Starts a reset (writes 0 to Status); wait for {@link #resetDone} before {@link #initialize}. */
    public static void beginReset(MmioBus bus, long mmioBase) {
        new VirtioMmioRegisters(bus, mmioBase).write(VirtioMmioRegisters.STATUS, 0);
    }

    /** Whether the device finished the reset (Status reads 0), as the specification requires before reinitialising. */
    public static boolean resetDone(MmioBus bus, long mmioBase) {
        return new VirtioMmioRegisters(bus, mmioBase).read(VirtioMmioRegisters.STATUS) == 0;
    }

    /**
     * Brings up a device whose reset is done: ACKNOWLEDGE, DRIVER, accepts {@code setup.features()}
     * that the device offers, FEATURES_OK (checked), queues, DRIVER_OK. Lays its state out at
     * {@code stateGpa} ({@link #bytesNeeded} bytes).
     *
     * @throws GuestDriverException if the device is not a virtio-blk device, refuses the features, or
     *                              lacks the queues asked for; the device is then marked FAILED
     */
    public static VirtioBlkGuest initialize(GuestMemory memory, MmioBus bus, long mmioBase, long stateGpa, Setup setup) {
        VirtioMmioRegisters r = new VirtioMmioRegisters(bus, mmioBase);
        if ((r.read(VirtioMmioRegisters.MAGIC) & 0xffff_ffffL) != VirtioMmioRegisters.MAGIC_VALUE || r.read(VirtioMmioRegisters.VERSION) != 2
                || r.read(VirtioMmioRegisters.DEVICE_ID) != DEVICE_ID) {
            throw new GuestDriverException("no virtio-mmio v2 block device at 0x" + Long.toHexString(mmioBase));
        }
        if (r.read(VirtioMmioRegisters.STATUS) != 0) {
            throw new GuestDriverException("the device at 0x" + Long.toHexString(mmioBase) + " is not reset (status 0x"
                    + Integer.toHexString(r.read(VirtioMmioRegisters.STATUS)) + ")");
        }
        int status = VirtioMmioRegisters.STATUS_ACKNOWLEDGE;
        r.write(VirtioMmioRegisters.STATUS, status);
        status |= VirtioMmioRegisters.STATUS_DRIVER;
        r.write(VirtioMmioRegisters.STATUS, status);
        long offered = r.deviceFeatures();
        long accepted = offered & setup.features();
        if ((setup.features() & bit(F_VERSION_1)) != 0 && (offered & bit(F_VERSION_1)) == 0) {
            fail(r, status, "the device does not offer VIRTIO_F_VERSION_1");
        }
        r.writeDriverFeatures(accepted);
        status |= VirtioMmioRegisters.STATUS_FEATURES_OK;
        r.write(VirtioMmioRegisters.STATUS, status);
        if ((r.read(VirtioMmioRegisters.STATUS) & VirtioMmioRegisters.STATUS_FEATURES_OK) == 0) {
            fail(r, status, "the device refused features 0x" + Long.toHexString(accepted));
        }
        long cap = r.readConfig64(CFG_CAPACITY);
        int blk = (accepted & bit(F_BLK_SIZE)) != 0 ? (int) r.readConfig(CFG_BLK_SIZE, 4) : 512;
        int maxQueues = (accepted & bit(F_MQ)) != 0 ? (int) r.readConfig(CFG_NUM_QUEUES, 2) : 1;
        if (setup.numQueues() < 1 || setup.numQueues() > maxQueues) {
            fail(r, status, "asked for " + setup.numQueues() + " queues, the device gives " + maxQueues);
        }
        boolean useIndirect = setup.indirect() && (accepted & bit(F_INDIRECT_DESC)) != 0;
        if (setup.indirect() && !useIndirect) {
            fail(r, status, "indirect descriptors asked for but not negotiated");
        }
        long perQueue = perQueueBytes(setup.queueSize(), useIndirect);
        memory.writeU32(stateGpa + S_MAGIC, 0);
        memory.writeU32(stateGpa + S_NUM_QUEUES, setup.numQueues());
        memory.writeU64(stateGpa + S_MMIO, mmioBase);
        memory.writeU64(stateGpa + S_FEATURES, accepted);
        memory.writeU64(stateGpa + S_CAPACITY, cap);
        memory.writeU32(stateGpa + S_BLK_SIZE, blk);
        memory.writeU32(stateGpa + S_QUEUE_SIZE, setup.queueSize());
        memory.writeU32(stateGpa + S_FLAGS, useIndirect ? FLAG_INDIRECT : 0);
        memory.writeU32(stateGpa + S_QUEUE_BYTES, perQueue);
        boolean eventIdx = (accepted & bit(F_EVENT_IDX)) != 0;
        for (int q = 0; q < setup.numQueues(); q++) {
            long qbase = stateGpa + HEADER + q * perQueue;
            GuestVirtQueue.create(memory, r, qbase, q, setup.queueSize(), eventIdx);
            long slotBase = align(qbase + GuestVirtQueue.bytesNeeded(setup.queueSize()), 64);
            memory.write(slotBase, new byte[(int) (perQueue - (slotBase - qbase))]);
        }
        memory.writeU32(stateGpa + S_MAGIC, MAGIC);
        status |= VirtioMmioRegisters.STATUS_DRIVER_OK;
        r.write(VirtioMmioRegisters.STATUS, status);
        return new VirtioBlkGuest(memory, bus, stateGpa);
    }

    private static void fail(VirtioMmioRegisters r, int status, String why) {
        r.write(VirtioMmioRegisters.STATUS, status | VirtioMmioRegisters.STATUS_FAILED);
        throw new GuestDriverException("virtio-blk at 0x" + Long.toHexString(r.base()) + ": " + why);
    }

    /**
     * Re-attaches to a driver state that {@link #initialize} laid out at {@code stateGpa}.
     *
     * @throws GuestDriverException if there is none
     */
    public static VirtioBlkGuest attach(GuestMemory memory, MmioBus bus, long stateGpa) {
        if (memory.readU32(stateGpa + S_MAGIC) != MAGIC) {
            throw new GuestDriverException("no virtio-blk driver state at 0x" + Long.toHexString(stateGpa));
        }
        return new VirtioBlkGuest(memory, bus, stateGpa);
    }

    /** Whether a driver state is laid out at {@code stateGpa}. */
    public static boolean isPresent(GuestMemory memory, long stateGpa) {
        return memory.readU32(stateGpa + S_MAGIC) == MAGIC;
    }

    // ---- what was negotiated ----

    public VirtioMmioRegisters registers() {
        return regs;
    }

    public long features() {
        return features;
    }

    public boolean has(int featureBit) {
        return (features & bit(featureBit)) != 0;
    }

    /** Disk size in 512-byte sectors. */
    public long capacity() {
        return capacity;
    }

    public int blockSize() {
        return blkSize;
    }

    public int numQueues() {
        return queues.length;
    }

    public GuestVirtQueue queue(int q) {
        return queues[q];
    }

    public boolean usesIndirect() {
        return indirect;
    }

    // ---- requests ----

    /**
     * Queues a request (visible to the device at the next {@link #kick}).
     *
     * @param type         {@link #T_IN}, {@link #T_OUT}, {@link #T_FLUSH}, {@link #T_GET_ID}, or any number (to test the device)
     * @param dataGpa      the data buffer (0 with {@code dataLen} 0 for none)
     * @param deviceWrites whether the device writes the buffer (IN, GET_ID) rather than reads it (OUT)
     * @param tag          returned with the completion
     * @return the head descriptor, or -1 if the queue has no room
     */
    public int submit(int q, int type, long sector, long dataGpa, int dataLen, boolean deviceWrites, long tag) {
        GuestVirtQueue vq = queues[q];
        int parts = dataLen > 0 ? 3 : 2;
        int head = vq.alloc(indirect ? 1 : parts);
        if (head < 0) {
            return -1;
        }
        long slot = slots[q] + (long) SLOT * head;
        // the header {le32 type; le32 reserved; le64 sector} in two stores
        memory.writeU64(slot + SLOT_HEADER, Integer.toUnsignedLong(type));
        memory.writeU64(slot + SLOT_HEADER + 8, sector);
        memory.writeU8(slot + SLOT_STATUS, S_PENDING);
        memory.writeU64(slot + SLOT_TAG, tag);
        int dataFlags = deviceWrites ? GuestVirtQueue.DESC_F_WRITE : 0;
        if (indirect) {
            long t = tables[q] + (long) INDIRECT_TABLE * head;
            int k = 0;
            writeTableDesc(t, k, slot + SLOT_HEADER, 16, GuestVirtQueue.DESC_F_NEXT, k + 1);
            k++;
            if (dataLen > 0) {
                writeTableDesc(t, k, dataGpa, dataLen, dataFlags | GuestVirtQueue.DESC_F_NEXT, k + 1);
                k++;
            }
            writeTableDesc(t, k, slot + SLOT_STATUS, 1, GuestVirtQueue.DESC_F_WRITE, 0);
            vq.setDesc(head, t, 16 * (k + 1), GuestVirtQueue.DESC_F_INDIRECT);
        } else {
            // the chain alloc() linked: each descriptor written whole, its next kept
            int d = head;
            int n = vq.next(d);
            vq.writeDesc(d, slot + SLOT_HEADER, 16, GuestVirtQueue.DESC_F_NEXT, n);
            d = n;
            if (dataLen > 0) {
                n = vq.next(d);
                vq.writeDesc(d, dataGpa, dataLen, dataFlags | GuestVirtQueue.DESC_F_NEXT, n);
                d = n;
            }
            vq.setDesc(d, slot + SLOT_STATUS, 1, GuestVirtQueue.DESC_F_WRITE);
        }
        vq.add(head);
        return head;
    }

    /** Queues a DISCARD or WRITE_ZEROES request with one segment (the header and segment share a descriptor). */
    public int submitRange(int q, int type, long sector, long numSectors, int flags, long tag) {
        GuestVirtQueue vq = queues[q];
        int head = vq.alloc(2);
        if (head < 0) {
            return -1;
        }
        long slot = slots[q] + (long) SLOT * head;
        memory.writeU32(slot + SLOT_HEADER, type);
        memory.writeU32(slot + SLOT_HEADER + 4, 0);
        memory.writeU64(slot + SLOT_HEADER + 8, 0);
        memory.writeU64(slot + SLOT_SEGMENT, sector);
        memory.writeU32(slot + SLOT_SEGMENT + 8, numSectors);
        memory.writeU32(slot + SLOT_SEGMENT + 12, Integer.toUnsignedLong(flags));
        memory.writeU8(slot + SLOT_STATUS, S_PENDING);
        memory.writeU64(slot + SLOT_TAG, tag);
        vq.setDesc(head, slot + SLOT_HEADER, 32, GuestVirtQueue.DESC_F_NEXT);
        vq.setDesc(vq.next(head), slot + SLOT_STATUS, 1, GuestVirtQueue.DESC_F_WRITE);
        vq.add(head);
        return head;
    }

    private void writeTableDesc(long table, int i, long addr, int len, int flags, int next) {
        long d = table + 16L * i;
        memory.writeU64(d, addr);
        memory.writeU64(d + 8, Integer.toUnsignedLong(len) | (long) flags << 32 | (long) next << 48);
    }

    /** Publishes queued requests and notifies the device if it asked for it. */
    public boolean kick(int q) {
        return queues[q].kick();
    }

    /**
     * Takes up to {@code max} completions of queue {@code q} from its used ring, frees their
     * descriptors and hands each to {@code sink}.
     *
     * @return how many
     */
    public int poll(int q, Completion sink, int max) {
        GuestVirtQueue vq = queues[q];
        int n = 0;
        while (n < max) {
            long e = vq.nextUsed();
            if (e < 0) {
                break;
            }
            int head = (int) (e >>> 32);
            int len = (int) e;
            if (head >= vq.size()) {
                throw new GuestDriverException("queue " + q + ": the device returned descriptor " + head + ", beyond the queue size");
            }
            long slot = slots[q] + (long) SLOT * head;
            int status = memory.readU8(slot + SLOT_STATUS);
            long tag = memory.readU64(slot + SLOT_TAG);
            vq.free(head);
            n++;
            sink.completed(tag, status, len);
        }
        return n;
    }

    /** Guest-physical address of the status byte of the request with {@code head} (for tests). */
    public long statusAddress(int q, int head) {
        return slots[q] + (long) SLOT * head + SLOT_STATUS;
    }

    /** Reads and acknowledges InterruptStatus, returning the bits that were set (1: used buffer, 2: configuration). */
    public int ackInterrupt() {
        int isr = regs.read(VirtioMmioRegisters.INTERRUPT_STATUS);
        if (isr != 0) {
            regs.write(VirtioMmioRegisters.INTERRUPT_ACK, isr);
        }
        return isr;
    }

    /** The device status register. */
    public int status() {
        return regs.read(VirtioMmioRegisters.STATUS);
    }

    /** Whether the device asks for a reset (DEVICE_NEEDS_RESET). */
    public boolean needsReset() {
        return (status() & VirtioMmioRegisters.STATUS_NEEDS_RESET) != 0;
    }

    /** Guest-physical address of the driver's state. */
    public long stateAddress() {
        return state;
    }
}
