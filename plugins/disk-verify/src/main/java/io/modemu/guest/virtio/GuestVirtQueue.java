package io.modemu.guest.virtio;

import io.modemu.machine.GuestMemory;

/**
 * The driver side of one split virtqueue (VIRTIO 1.2, 2.7), as a guest kernel keeps it: the
 * descriptor table, available and used rings, and the driver's own bookkeeping (free list, shadow
 * indices) all live in guest RAM at a fixed address, so that the queue survives a migration with the
 * VM. This object is only a view: {@link #attach} re-creates it from RAM at any time.
 *
 * <p>RAM layout from {@code base}: a 64-byte header, the descriptor table (16-byte aligned), the
 * available ring, the used ring (4-byte aligned).
 *
 * <p>Threads: a guest runs on one vCPU; the device reads the rings from its own thread, so indices are
 * published with release stores and read with acquire loads, and a full fence separates publishing
 * from reading the other side's event index (2.7.13, 2.7.14).
 */
public final class GuestVirtQueue {
    public static final int DESC_F_NEXT = 1;
    public static final int DESC_F_WRITE = 2;
    public static final int DESC_F_INDIRECT = 4;
    public static final int AVAIL_F_NO_INTERRUPT = 1;
    public static final int USED_F_NO_NOTIFY = 1;

    private static final int MAGIC = 0x31515647; // "GVQ1"
    private static final int H_MAGIC = 0;
    private static final int H_SIZE = 4;
    private static final int H_INDEX = 6;
    private static final int H_FREE_HEAD = 8;
    private static final int H_NUM_FREE = 10;
    private static final int H_AVAIL_IDX = 12;
    private static final int H_LAST_USED = 14;
    private static final int H_KICKED = 16;
    private static final int H_FLAGS = 18;
    private static final int H_MMIO = 24;
    private static final int HEADER = 64;
    private static final int FLAG_EVENT_IDX = 1;

    private final GuestMemory memory;
    private final long base;
    private final int size;
    private final int index;
    private final boolean eventIdx;
    private final long desc;
    private final long avail;
    private final long used;
    private final VirtioMmioRegisters regs;

    private GuestVirtQueue(GuestMemory memory, VirtioMmioRegisters regs, long base) {
        this.memory = memory;
        this.regs = regs;
        this.base = base;
        this.size = memory.readU16(base + H_SIZE);
        this.index = memory.readU16(base + H_INDEX);
        this.eventIdx = (memory.readU16(base + H_FLAGS) & FLAG_EVENT_IDX) != 0;
        this.desc = descAddr(base);
        this.avail = desc + 16L * size;
        this.used = align(avail + 6 + 2L * size, 4);
    }

    private static long descAddr(long base) {
        return align(base + HEADER, 16);
    }

    private static long align(long v, long a) {
        return (v + a - 1) & -a;
    }

    /** Guest RAM a queue of {@code size} entries needs from a 16-byte aligned base. */
    public static long bytesNeeded(int size) {
        long desc = HEADER;
        long avail = desc + 16L * size;
        long used = align(avail + 6 + 2L * size, 4);
        return used + 6 + 8L * size;
    }

    /**
     * Lays out a fresh queue at {@code base} (zeroed rings, every descriptor free) and programs it into
     * the device: QueueSel, QueueNum (after checking QueueNumMax), the three addresses, QueueReady.
     *
     * @throws GuestDriverException if the device does not offer this queue or this size
     */
    public static GuestVirtQueue create(GuestMemory memory, VirtioMmioRegisters regs, long base, int index, int size, boolean eventIdx) {
        if (Integer.bitCount(size) != 1 || size > 32768) {
            throw new GuestDriverException("queue size " + size + " is not a power of two up to 32768");
        }
        regs.write(VirtioMmioRegisters.QUEUE_SEL, index);
        int max = regs.read(VirtioMmioRegisters.QUEUE_NUM_MAX);
        if (max == 0) {
            throw new GuestDriverException("the device at 0x" + Long.toHexString(regs.base()) + " has no queue " + index);
        }
        if (max < size) {
            throw new GuestDriverException("the device's queue " + index + " takes at most " + max + " entries, not " + size);
        }
        if (regs.read(VirtioMmioRegisters.QUEUE_READY) != 0) {
            throw new GuestDriverException("queue " + index + " is already ready: reset the device first");
        }
        long bytes = bytesNeeded(size);
        memory.write(base, new byte[(int) bytes]);
        memory.writeU32(base + H_MAGIC, MAGIC);
        memory.writeU16(base + H_SIZE, size);
        memory.writeU16(base + H_INDEX, index);
        memory.writeU16(base + H_FLAGS, eventIdx ? FLAG_EVENT_IDX : 0);
        memory.writeU64(base + H_MMIO, regs.base());
        GuestVirtQueue q = new GuestVirtQueue(memory, regs, base);
        for (int i = 0; i < size; i++) {
            memory.writeU16(q.desc + 16L * i + 14, (i + 1) & 0xffff);
        }
        memory.writeU16(base + H_FREE_HEAD, 0);
        memory.writeU16(base + H_NUM_FREE, size);
        regs.write(VirtioMmioRegisters.QUEUE_NUM, size);
        regs.write(VirtioMmioRegisters.QUEUE_DESC_LOW, q.desc);
        regs.write(VirtioMmioRegisters.QUEUE_DESC_HIGH, q.desc >>> 32);
        regs.write(VirtioMmioRegisters.QUEUE_DRIVER_LOW, q.avail);
        regs.write(VirtioMmioRegisters.QUEUE_DRIVER_HIGH, q.avail >>> 32);
        regs.write(VirtioMmioRegisters.QUEUE_DEVICE_LOW, q.used);
        regs.write(VirtioMmioRegisters.QUEUE_DEVICE_HIGH, q.used >>> 32);
        regs.write(VirtioMmioRegisters.QUEUE_READY, 1);
        return q;
    }

    /**
     * Re-attaches to a queue laid out by {@link #create} (after a migration, or from another step).
     *
     * @throws GuestDriverException if no queue is at {@code base}
     */
    public static GuestVirtQueue attach(GuestMemory memory, io.modemu.machine.MmioBus bus, long base) {
        if (memory.readU32(base + H_MAGIC) != MAGIC) {
            throw new GuestDriverException("no virtqueue at 0x" + Long.toHexString(base));
        }
        return new GuestVirtQueue(memory, new VirtioMmioRegisters(bus, memory.readU64(base + H_MMIO)), base);
    }

    public int size() {
        return size;
    }

    public int index() {
        return index;
    }

    public long descAddr() {
        return desc;
    }

    public long availAddr() {
        return avail;
    }

    public long usedAddr() {
        return used;
    }

    public boolean eventIdx() {
        return eventIdx;
    }

    // ---- descriptors ----

    /** Free descriptors. */
    public int numFree() {
        return memory.readU16(base + H_NUM_FREE);
    }

    /**
     * Takes {@code n} descriptors from the free list, linked by their {@code next} fields in order,
     * and returns the first, or -1 if fewer than {@code n} are free. The caller fills them with
     * {@link #setDesc}.
     */
    public int alloc(int n) {
        // free head and free count are adjacent 16-bit fields: one load, one store
        long list = memory.readU32(base + H_FREE_HEAD);
        int head = (int) (list & 0xffff);
        int free = (int) (list >>> 16);
        if (n <= 0 || n > free) {
            return -1;
        }
        int i = head;
        for (int k = 1; k < n; k++) {
            i = memory.readU16(desc + 16L * i + 14);
        }
        int after = memory.readU16(desc + 16L * i + 14);
        memory.writeU32(base + H_FREE_HEAD, after | (long) (free - n) << 16);
        return head;
    }

    /** The descriptor that follows {@code i} in an allocated chain (its {@code next} field). */
    public int next(int i) {
        return memory.readU16(desc + 16L * i + 14);
    }

    /** Fills descriptor {@code i}; its {@code next} field is kept (it links the allocated chain). */
    public void setDesc(int i, long addr, int len, int flags) {
        long d = desc + 16L * i;
        memory.writeU64(d, addr);
        memory.writeU32(d + 8, Integer.toUnsignedLong(len));
        memory.writeU16(d + 12, flags);
    }

    /** Fills descriptor {@code i} completely, {@code next} included (for hand-made, possibly malformed, chains). */
    public void writeDesc(int i, long addr, int len, int flags, int next) {
        long d = desc + 16L * i;
        // {le64 addr; le32 len; le16 flags; le16 next}: two stores
        memory.writeU64(d, addr);
        memory.writeU64(d + 8, Integer.toUnsignedLong(len) | (long) (flags & 0xffff) << 32 | (long) (next & 0xffff) << 48);
    }

    /** Returns a chain to the free list, following NEXT flags from {@code head} (at most the queue size). */
    public void free(int head) {
        int n = 1;
        int i = head;
        // flags and next are adjacent 16-bit fields: one load per descriptor
        long flagsNext;
        while (((flagsNext = memory.readU32(desc + 16L * i + 12)) & DESC_F_NEXT) != 0 && n < size) {
            i = (int) (flagsNext >>> 16);
            n++;
        }
        long list = memory.readU32(base + H_FREE_HEAD);
        // the chain's last descriptor: flags cleared, next = the old free head
        memory.writeU32(desc + 16L * i + 12, (list & 0xffff) << 16);
        memory.writeU32(base + H_FREE_HEAD, head | ((list >>> 16) + n) << 16);
    }

    // ---- available ring ----

    /** Puts {@code head} in the next available slot; the device sees it after {@link #publish()}. */
    public void add(int head) {
        int idx = memory.readU16(base + H_AVAIL_IDX);
        memory.writeU16(avail + 4 + 2L * (idx & (size - 1)), head);
        memory.writeU16(base + H_AVAIL_IDX, (idx + 1) & 0xffff);
    }

    /** Makes every added chain visible to the device (release store of avail->idx). */
    public void publish() {
        memory.writeU16Release(avail + 2, memory.readU16(base + H_AVAIL_IDX));
    }

    /**
     * Publishes, then notifies the device if it asked to be notified (EVENT_IDX: the available
     * event index was crossed; else NO_NOTIFY is clear).
     *
     * @return whether it wrote QueueNotify
     */
    public boolean kick() {
        publish();
        GuestMemory.fullFence();
        int newIdx = memory.readU16(base + H_AVAIL_IDX);
        int old = memory.readU16(base + H_KICKED);
        memory.writeU16(base + H_KICKED, newIdx);
        if (newIdx == old) {
            return false;
        }
        boolean notify;
        if (eventIdx) {
            int event = memory.readU16Acquire(used + 4 + 8L * size);
            notify = ((newIdx - event - 1) & 0xffff) < ((newIdx - old) & 0xffff);
        } else {
            notify = (memory.readU16Acquire(used) & USED_F_NO_NOTIFY) == 0;
        }
        if (notify) {
            regs.write(VirtioMmioRegisters.QUEUE_NOTIFY, index);
        }
        return notify;
    }

    /** Writes QueueNotify whatever the device asked for. */
    public void notifyDevice() {
        publish();
        regs.write(VirtioMmioRegisters.QUEUE_NOTIFY, index);
    }

    /** The next available index the driver will use (its shadow of avail->idx). */
    public int availIdx() {
        return memory.readU16(base + H_AVAIL_IDX);
    }

    /** Sets the shadow avail index (for hand-made, possibly malformed, rings). */
    public void setAvailIdx(int idx) {
        memory.writeU16(base + H_AVAIL_IDX, idx & 0xffff);
    }

    // ---- used ring ----

    /** Whether the device published used elements the driver has not taken. */
    public boolean hasUsed() {
        return memory.readU16Acquire(used + 2) != memory.readU16(base + H_LAST_USED);
    }

    /**
     * Takes the next used element: {@code id << 32 | len}, or -1 if there is none. The chain is not
     * freed: call {@link #free(int)}.
     */
    public long nextUsed() {
        int last = memory.readU16(base + H_LAST_USED);
        if (memory.readU16Acquire(used + 2) == last) {
            return -1;
        }
        // {le32 id; le32 len} in one load
        long e = memory.readU64(used + 4 + 8L * (last & (size - 1)));
        memory.writeU16(base + H_LAST_USED, (last + 1) & 0xffff);
        return e << 32 | e >>> 32;
    }

    /**
     * Asks for an interrupt at the next used element (EVENT_IDX: used_event at the last seen index;
     * else clears NO_INTERRUPT), fences, and tells whether an element arrived meanwhile, in which case
     * the caller must not sleep.
     */
    public boolean enableInterrupt() {
        if (eventIdx) {
            memory.writeU16Release(avail + 4 + 2L * size, memory.readU16(base + H_LAST_USED));
        } else {
            memory.writeU16Release(avail, 0);
        }
        GuestMemory.fullFence();
        return hasUsed();
    }

    /** Asks the device not to interrupt (without EVENT_IDX: NO_INTERRUPT; with it the event index just stays behind). */
    public void disableInterrupt() {
        if (!eventIdx) {
            memory.writeU16Release(avail, AVAIL_F_NO_INTERRUPT);
        }
    }

    /** The used index the driver consumed up to. */
    public int lastUsedIdx() {
        return memory.readU16(base + H_LAST_USED);
    }
}
