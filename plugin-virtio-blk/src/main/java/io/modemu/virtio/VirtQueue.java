package io.modemu.virtio;

import io.modemu.machine.GuestMemory;
import io.modemu.machine.RamBlock;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The device side of one split virtqueue (VIRTIO 1.2, 2.7) in guest RAM: pops descriptor chains
 * from the available ring, pushes used elements, publishes them in batches and decides, with
 * VIRTIO_F_EVENT_IDX or the flags, whether the driver wants an interrupt or a notification.
 *
 * <p>Nothing the guest wrote is trusted: ring and table addresses are checked against guest RAM when
 * the queue is activated, every buffer address when a chain is popped, and a chain may not be longer
 * than the queue (which also catches loops). A violation is a {@link VirtioProtocolException} and
 * leaves the queue where it was.
 *
 * <p>Threads: not thread-safe. A queue belongs to one context (its IOThread, or the main loop) and
 * every method runs there, except while the VM is stopped and the device drained, when the main loop
 * may save or restore it.
 */
public final class VirtQueue {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle IDX = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private final GuestMemory memory;
    private final String name;
    private final int maxSize;

    private boolean active;
    private int size;
    private long descAddr;
    private long availAddr;
    private long usedAddr;
    private MemorySegment desc;
    private MemorySegment avail;
    private MemorySegment used;
    private boolean eventIdx;

    private int lastAvailIdx;
    private int shadowAvailIdx;
    private int usedIdx;
    private int publishedUsedIdx;
    private int signalledUsed;
    private boolean signalledUsedValid;

    /**
     * @param name    for messages, for example {@code virtio-blk 'vd0' queue 1}
     * @param maxSize the largest queue size the device accepts (QueueNumMax)
     */
    public VirtQueue(GuestMemory memory, String name, int maxSize) {
        this.memory = memory;
        this.name = name;
        this.maxSize = maxSize;
    }

    public String name() {
        return name;
    }

    public int maxSize() {
        return maxSize;
    }

    public boolean isActive() {
        return active;
    }

    public int size() {
        return size;
    }

    public long descAddr() {
        return descAddr;
    }

    public long availAddr() {
        return availAddr;
    }

    public long usedAddr() {
        return usedAddr;
    }

    public boolean eventIdx() {
        return eventIdx;
    }

    /** Bytes of the descriptor table, available ring and used ring of a queue of {@code n} entries. */
    public static long descBytes(int n) {
        return (long) Virtio.DESC_SIZE * n;
    }

    public static long availBytes(int n) {
        return 6L + 2L * n;
    }

    public static long usedBytes(int n) {
        return 6L + 8L * n;
    }

    /**
     * Checks the queue's layout as the driver configured it and starts using it, with indices at 0.
     *
     * @throws VirtioProtocolException naming the problem: a size that is not a power of two or above
     *                                 the maximum, a misaligned ring, a ring outside guest RAM
     */
    public void activate(int queueSize, long descGpa, long availGpa, long usedGpa, boolean withEventIdx) throws VirtioProtocolException {
        if (queueSize <= 0 || queueSize > maxSize || Integer.bitCount(queueSize) != 1) {
            throw new VirtioProtocolException(name + ": queue size " + queueSize + " is not a power of two in 1.." + maxSize);
        }
        checkArea("descriptor table", descGpa, descBytes(queueSize), 16);
        checkArea("available ring", availGpa, availBytes(queueSize), 2);
        checkArea("used ring", usedGpa, usedBytes(queueSize), 4);
        this.size = queueSize;
        this.descAddr = descGpa;
        this.availAddr = availGpa;
        this.usedAddr = usedGpa;
        this.desc = memory.slice(descGpa, descBytes(queueSize));
        this.avail = memory.slice(availGpa, availBytes(queueSize));
        this.used = memory.slice(usedGpa, usedBytes(queueSize));
        this.eventIdx = withEventIdx;
        this.lastAvailIdx = 0;
        this.shadowAvailIdx = 0;
        this.usedIdx = 0;
        this.publishedUsedIdx = 0;
        this.signalledUsed = 0;
        this.signalledUsedValid = false;
        this.active = true;
    }

    private void checkArea(String what, long gpa, long bytes, int align) throws VirtioProtocolException {
        if ((gpa & (align - 1)) != 0) {
            throw new VirtioProtocolException(name + ": " + what + " at 0x" + Long.toHexString(gpa) + " is not " + align + "-byte aligned");
        }
        if (!memory.isRam(gpa, bytes)) {
            throw new VirtioProtocolException(name + ": " + what + " at 0x" + Long.toHexString(gpa) + " (" + bytes + " bytes) is outside guest RAM");
        }
    }

    /** Stops using the rings; nothing is read or written until the next {@link #activate}. */
    public void deactivate() {
        active = false;
        desc = avail = used = null;
    }

    // ---- available side ----

    /**
     * How many chains the driver made available and the device has not popped yet.
     *
     * @throws VirtioProtocolException if the driver moved the index by more than the queue size
     */
    public int available() throws VirtioProtocolException {
        int idx = Short.toUnsignedInt((short) IDX.getAcquire(avail, 2L));
        int n = (idx - lastAvailIdx) & 0xffff;
        if (n > size) {
            throw new VirtioProtocolException(name + ": the driver moved the available index from " + lastAvailIdx + " to " + idx
                    + ", more than the queue size " + size);
        }
        shadowAvailIdx = idx;
        return n;
    }

    /** Whether nothing is waiting in the available ring (a malformed index counts as not empty). */
    public boolean isEmpty() {
        try {
            return available() == 0;
        } catch (VirtioProtocolException e) {
            return false;
        }
    }

    /**
     * Pops the next available chain into {@code chain}.
     *
     * @return false if the available ring is empty
     * @throws VirtioProtocolException if the chain is malformed; the chain stays in the ring
     */
    public boolean pop(DescriptorChain chain) throws VirtioProtocolException {
        if (lastAvailIdx == shadowAvailIdx && available() == 0) {
            return false;
        }
        int head = Short.toUnsignedInt(avail.get(U16, 4L + 2L * (lastAvailIdx & (size - 1))));
        if (head >= size) {
            throw new VirtioProtocolException(name + ": available ring entry " + lastAvailIdx + " names descriptor " + head
                    + ", beyond the queue size " + size);
        }
        walk(head, chain);
        lastAvailIdx = (lastAvailIdx + 1) & 0xffff;
        return true;
    }

    private void walk(int head, DescriptorChain chain) throws VirtioProtocolException {
        chain.reset(head);
        MemorySegment table = desc;
        // where the table starts in {@code table}: 0 for the queue's own, the offset in its RAM block for an indirect one
        long tableBase = 0;
        int tableSize = size;
        boolean indirect = false;
        int i = head;
        int seen = 0;
        while (true) {
            if (++seen > size) {
                throw new VirtioProtocolException(name + ": the chain at head " + head + " is longer than the queue size " + size
                        + " (a loop?)");
            }
            long off = tableBase + (long) Virtio.DESC_SIZE * i;
            // a descriptor is {le64 addr; le32 len; le16 flags; le16 next}: two loads instead of four
            long addr = table.get(U64, off);
            long rest = table.get(U64, off + 8);
            int len = (int) rest;
            int flags = (int) (rest >>> 32) & 0xffff;
            int next = (int) (rest >>> 48);
            if ((flags & Virtio.DESC_F_INDIRECT) != 0) {
                if (indirect) {
                    throw new VirtioProtocolException(name + ": chain at head " + head + ": an indirect table inside an indirect table");
                }
                if ((flags & Virtio.DESC_F_NEXT) != 0) {
                    throw new VirtioProtocolException(name + ": chain at head " + head + ": descriptor " + i + " has both INDIRECT and NEXT");
                }
                long tableBytes = Integer.toUnsignedLong(len);
                if (tableBytes == 0 || tableBytes % Virtio.DESC_SIZE != 0) {
                    throw new VirtioProtocolException(name + ": chain at head " + head + ": indirect table of " + tableBytes
                            + " bytes is not a positive multiple of 16");
                }
                if (!memory.isRam(addr, tableBytes)) {
                    throw new VirtioProtocolException(name + ": chain at head " + head + ": indirect table at 0x" + Long.toHexString(addr)
                            + " (" + tableBytes + " bytes) is outside guest RAM");
                }
                // read it in place in its RAM block: no view to allocate per request
                RamBlock block = memory.blockFor(addr, tableBytes);
                table = block.segment();
                tableBase = addr - block.base();
                tableSize = (int) Math.min(Integer.MAX_VALUE, tableBytes / Virtio.DESC_SIZE);
                indirect = true;
                i = 0;
                continue;
            }
            if (len == 0) {
                throw new VirtioProtocolException(name + ": chain at head " + head + ": descriptor " + i + " has length 0");
            }
            long bytes = Integer.toUnsignedLong(len);
            if (!memory.isRam(addr, bytes)) {
                throw new VirtioProtocolException(name + ": chain at head " + head + ": buffer at 0x" + Long.toHexString(addr) + " ("
                        + bytes + " bytes) is outside guest RAM");
            }
            boolean writable = (flags & Virtio.DESC_F_WRITE) != 0;
            int k = chain.count;
            if (writable) {
                chain.writableBytes += bytes;
            } else {
                if (k != chain.readable) {
                    throw new VirtioProtocolException(name + ": chain at head " + head + ": a device-readable buffer follows a device-writable one");
                }
                chain.readable++;
                chain.readableBytes += bytes;
            }
            chain.addr[k] = addr;
            chain.len[k] = len;
            chain.count = k + 1;
            if ((flags & Virtio.DESC_F_NEXT) == 0) {
                return;
            }
            if (next >= tableSize) {
                throw new VirtioProtocolException(name + ": chain at head " + head + ": next descriptor " + next + " is beyond the "
                        + (indirect ? "indirect table's " + tableSize + " entries" : "queue size " + size));
            }
            i = next;
        }
    }

    /**
     * Suppresses driver notifications while the device is busy with this queue (without
     * EVENT_IDX: the NO_NOTIFY flag; with it, the event index already stays behind).
     */
    public void disableNotification() {
        if (!eventIdx) {
            used.set(U16, 0, (short) Virtio.USED_F_NO_NOTIFY);
            memory.markDirty(usedAddr, 2);
        }
    }

    /**
     * Asks for a notification when the driver adds more (EVENT_IDX: the available event index at the
     * index read last; else clears NO_NOTIFY), then fences, so that the caller's following
     * {@link #isEmpty()} check cannot miss a chain added meanwhile.
     */
    public void enableNotification() {
        if (eventIdx) {
            int idx = Short.toUnsignedInt((short) IDX.getAcquire(avail, 2L));
            long off = 4L + 8L * size;
            IDX.setRelease(used, off, (short) idx);
            memory.markDirty(usedAddr + off, 2);
        } else {
            used.set(U16, 0, (short) 0);
            memory.markDirty(usedAddr, 2);
        }
        VarHandle.fullFence();
    }

    // ---- used side ----

    /** Adds a used element (not visible to the driver until {@link #flush()}). */
    public void push(int head, int writtenBytes) {
        long off = 4L + 8L * (usedIdx & (size - 1));
        // {le32 id; le32 len} as one store
        used.set(U64, off, Integer.toUnsignedLong(head) | (long) writtenBytes << 32);
        usedIdx = (usedIdx + 1) & 0xffff;
    }

    /** Used elements pushed but not yet published. */
    public int unpublished() {
        return (usedIdx - publishedUsedIdx) & 0xffff;
    }

    /**
     * Publishes the used elements pushed since the last flush and decides whether the driver wants
     * an interrupt for them (EVENT_IDX: the used event index was crossed; else: NO_INTERRUPT clear).
     *
     * @return whether to interrupt the driver
     */
    public boolean flush() {
        if (usedIdx == publishedUsedIdx) {
            return false;
        }
        IDX.setRelease(used, 2L, (short) usedIdx);
        int count = (usedIdx - publishedUsedIdx) & 0xffff;
        long first = publishedUsedIdx & (size - 1);
        publishedUsedIdx = usedIdx;
        markUsedDirty(first, count);
        VarHandle.fullFence();
        if (!eventIdx) {
            return (Short.toUnsignedInt(avail.get(U16, 0)) & Virtio.AVAIL_F_NO_INTERRUPT) == 0;
        }
        int event = Short.toUnsignedInt((short) IDX.getAcquire(avail, 4L + 2L * size));
        int old = signalledUsed;
        boolean valid = signalledUsedValid;
        signalledUsed = usedIdx;
        signalledUsedValid = true;
        return !valid || Virtio.needEvent(event, usedIdx, old);
    }

    private void markUsedDirty(long firstSlot, int count) {
        memory.markDirty(usedAddr, 4);
        if (firstSlot + count <= size) {
            memory.markDirty(usedAddr + 4 + 8 * firstSlot, 8L * count);
        } else {
            memory.markDirty(usedAddr + 4 + 8 * firstSlot, 8L * (size - firstSlot));
            memory.markDirty(usedAddr + 4, 8L * (count - (size - firstSlot)));
        }
    }

    // ---- state for migration ----

    public int lastAvailIdx() {
        return lastAvailIdx;
    }

    public int usedIdx() {
        return usedIdx;
    }

    public int signalledUsed() {
        return signalledUsed;
    }

    public boolean signalledUsedValid() {
        return signalledUsedValid;
    }

    /**
     * Restores the indices of an active queue (after {@link #activate}), as saved on the source.
     * Used elements are all published on the source before it saves.
     */
    public void restoreIndices(int lastAvail, int usedIndex, int signalled, boolean signalledValid) {
        this.lastAvailIdx = lastAvail & 0xffff;
        this.shadowAvailIdx = this.lastAvailIdx;
        this.usedIdx = usedIndex & 0xffff;
        this.publishedUsedIdx = this.usedIdx;
        this.signalledUsed = signalled & 0xffff;
        this.signalledUsedValid = signalledValid;
    }

    @Override
    public String toString() {
        return name + (active ? "[size " + size + ", avail " + lastAvailIdx + ", used " + usedIdx + "]" : "[inactive]");
    }
}
