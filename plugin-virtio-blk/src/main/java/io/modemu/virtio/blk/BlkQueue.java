package io.modemu.virtio.blk;

import io.modemu.aio.AioContext;
import io.modemu.aio.EventNotifier;
import io.modemu.block.Errno;
import io.modemu.machine.GuestMemory;
import io.modemu.machine.RamBlock;
import io.modemu.virtio.DescriptorChain;
import io.modemu.virtio.QueueLayout;
import io.modemu.virtio.VirtQueue;
import io.modemu.virtio.Virtio;
import io.modemu.virtio.VirtioProtocolException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayDeque;

/**
 * The dataplane of one virtio-blk queue: its home context (an IOThread, or the main loop without
 * {@code iothread=}), the notifier that QueueNotify signals, the split ring, one {@link BlkRequest} per
 * descriptor index, and the requests parked by {@code werror/rerror=stop}.
 *
 * <p>Threads: everything here runs on {@link #context}, the notifier's handler included, except that
 * the main loop reads and restores the state while the VM is stopped and the device drained.
 * Completions from a block backend living in another context are passed here before they touch the
 * ring. Used elements are published in batches: at the end of a pass over the available ring, or by
 * one bottom half for completions that arrive on their own, and each batch raises at most one
 * interrupt, which never needs the main loop.
 */
final class BlkQueue {
    private static final ValueLayout.OfInt LE_U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    final VirtioBlkDevice device;
    final int index;
    final AioContext context;
    final VirtQueue vq;
    final EventNotifier notifier;
    private final DescriptorChain chain;
    private final BlkRequest[] requests;
    /** Requests taken in the current batch, waiting to be submitted. */
    private final BlkRequest[] batch = new BlkRequest[POP_BATCH];
    private final ArrayDeque<BlkRequest> parked = new ArrayDeque<>();
    private final Runnable processTask = this::process;
    private final Runnable flushTask = this::flushNow;
    private final GuestMemory memory;
    /**
     * Used elements published at once inside a pass: small enough that a polling driver refills the
     * ring while the pass goes on (the two stream without notifications), large enough to amortize
     * the fences.
     */
    private static final int PUBLISH_BATCH = 8;
    /** Chains taken before their requests are submitted (QEMU submits up to 32 at once). */
    private static final int POP_BATCH = 32;
    private int epoch;
    private boolean inPass;
    private boolean flushScheduled;
    /** Requests answered and not yet published, in the order answered: their heads and status bytes. */
    private final int[] doneHead;
    private final byte[] doneStatus;
    private int unpublished;
    /** In-flight counts {@link #takeBatch} reserved and no request has used yet. */
    private int reserved;

    BlkQueue(VirtioBlkDevice device, int index, AioContext context, int maxSize) {
        this.device = device;
        this.index = index;
        this.context = context;
        this.memory = device.memory();
        this.vq = new VirtQueue(memory, "virtio-blk '" + device.id() + "' queue " + index, maxSize);
        this.chain = new DescriptorChain(maxSize);
        this.requests = new BlkRequest[maxSize];
        this.doneHead = new int[maxSize];
        this.doneStatus = new byte[maxSize];
        for (int i = 0; i < maxSize; i++) {
            requests[i] = new BlkRequest(this, i);
        }
        this.notifier = context.newEventNotifier("virtio-blk:" + device.id() + ":vq" + index, processTask);
    }

    // ---- lifecycle, on the queue's context ----

    /** The driver set DRIVER_OK (or readied this queue after it): start serving. */
    void activate(QueueLayout layout, boolean eventIdx) {
        context.assertInThread();
        try {
            vq.activate(layout.size(), layout.desc(), layout.avail(), layout.used(), eventIdx);
        } catch (VirtioProtocolException e) {
            device.guestError(e.getMessage());
            return;
        }
        process();
    }

    /**
     * Stops serving: the rings are forgotten, parked requests dropped, and requests still in flight
     * become stale (their completion touches nothing).
     */
    void deactivate() {
        context.assertInThread();
        clear();
    }

    /** {@link #deactivate()} for the main loop while the VM is stopped and the device drained (state load). */
    void clear() {
        epoch++;
        for (BlkRequest r : parked) {
            r.busy = false;
        }
        parked.clear();
        for (int i = 0; i < unpublished; i++) {
            requests[doneHead[i]].busy = false;
        }
        device.tracker().release(unpublished);
        unpublished = 0;
        vq.deactivate();
    }

    /** The VM started: retry the parked requests, then take whatever the driver queued meanwhile. */
    void resume() {
        context.assertInThread();
        for (int n = parked.size(); n > 0; n--) {
            BlkRequest r = parked.poll();
            device.tracker().acquire();
            inPass = true;
            try {
                r.submit();
            } finally {
                inPass = false;
            }
        }
        flushNow();
        process();
    }

    /** Requests parked by an error policy, oldest first. Queue context, or main loop while stopped. */
    ArrayDeque<BlkRequest> parked() {
        return parked;
    }

    BlkRequest request(int head) {
        return requests[head];
    }

    // ---- the available ring ----

    /** Notifier handler: take every available request. */
    void process() {
        if (!vq.isActive() || !device.canServe()) {
            return;
        }
        inPass = true;
        try {
            int budget = 4 * vq.size();
            while (true) {
                vq.disableNotification();
                // running and quiesced are checked between passes, not inside one: a pass that began
                // before a stop takes every request the driver made available before its kick, so the
                // stop's barrier on this context finds them all submitted (as QEMU's handler does)
                while (budget > 0 && !device.transport().isBroken()) {
                    int popped = takeBatch(Math.min(budget, POP_BATCH));
                    if (popped == 0) {
                        break;
                    }
                    budget -= popped;
                }
                if (!device.canServe()) {
                    break;
                }
                if (budget == 0) {
                    // the driver keeps adding: let other work on this loop run, then continue
                    context.execute(processTask);
                    break;
                }
                vq.enableNotification();
                if (vq.isEmpty()) {
                    break;
                }
            }
        } catch (VirtioProtocolException e) {
            device.guestError(e.getMessage());
        } finally {
            inPass = false;
        }
        flushNow();
    }

    /**
     * Pops up to {@code max} chains, answers those that need no backend at once, then submits the
     * others (as QEMU collects a batch before it submits): the chains' descriptors and headers, which
     * the driver wrote on its own CPU, are read one after another without a system call in between.
     * What was taken is submitted even if a later chain is malformed.
     *
     * @return how many chains were popped
     */
    private int takeBatch(int max) throws VirtioProtocolException {
        int popped = 0;
        int ready = 0;
        try {
            while (popped < max && !device.transport().isBroken() && vq.pop(chain)) {
                if (reserved == 0) {
                    // count the rest of the batch in flight at once (one atomic update, not one per
                    // request); what is not taken is given back below, so the count never falls short
                    reserved = max - popped;
                    device.tracker().acquire(reserved);
                }
                popped++;
                BlkRequest r = take(chain);
                if (r != null) {
                    batch[ready++] = r;
                }
            }
        } finally {
            if (reserved > 0) {
                device.tracker().release(reserved);
                reserved = 0;
            }
            for (int i = 0; i < ready; i++) {
                BlkRequest r = batch[i];
                batch[i] = null;
                r.submit();
            }
        }
        return popped;
    }

    /** Takes a popped chain: its request, to submit, or null if it was answered at once. */
    private BlkRequest take(DescriptorChain c) throws VirtioProtocolException {
        BlkRequest r = requests[c.head()];
        if (r.busy) {
            throw new VirtioProtocolException(vq.name() + ": descriptor " + c.head() + " was made available again while its request is in flight");
        }
        // a malformed chain throws here, before anything about its head changed
        int status = parse(r, c);
        // counted from here until its answer is published: one of the batch's reserved counts
        r.busy = true;
        r.epoch = epoch;
        reserved--;
        if (status >= 0) {
            complete(r, status);
            return null;
        }
        return r;
    }

    /**
     * Reads the request from its chain. Returns a status to answer at once, or -1 when the request
     * goes to the block backend.
     *
     * @throws VirtioProtocolException for what the specification leaves no answer to: a header shorter
     *                                 than 16 bytes, no status byte, a discard segment cut short
     */
    private int parse(BlkRequest r, DescriptorChain c) throws VirtioProtocolException {
        if (c.readableBytes() < VirtioBlk.HEADER_BYTES) {
            throw new VirtioProtocolException(vq.name() + ": request at head " + c.head() + " has a " + c.readableBytes()
                    + "-byte header, less than " + VirtioBlk.HEADER_BYTES);
        }
        if (c.writableCount() == 0) {
            throw new VirtioProtocolException(vq.name() + ": request at head " + c.head() + " has no device-writable buffer for its status byte");
        }
        int last = c.count() - 1;
        r.statusAddr = c.address(last) + Integer.toUnsignedLong(c.length(last)) - 1;
        r.inLen = (int) Math.min(c.writableBytes(), 0xffff_ffffL);
        r.clearSegments();
        int type;
        long sector;
        if (Integer.toUnsignedLong(c.length(0)) >= VirtioBlk.HEADER_BYTES) {
            // the usual layout, the whole header in the first buffer: one lookup for both fields
            RamBlock block = memory.blockFor(c.address(0), VirtioBlk.HEADER_BYTES);
            long at = c.address(0) - block.base();
            type = block.segment().get(LE_U32, at);
            sector = block.segment().get(LE_U64, at + 8);
        } else {
            type = (int) gather(c, 0, 4);
            sector = gather(c, 8, 8);
        }
        if (!device.modern()) {
            // legacy drivers: ignore the barrier flag and accept FLUSH with the OUT bit, as QEMU does
            type &= ~VirtioBlk.T_BARRIER;
            if (type == VirtioBlk.T_FLUSH_OUT) {
                type = VirtioBlk.T_FLUSH;
            }
        }
        switch (type) {
            case VirtioBlk.T_IN -> {
                r.kind = BlkRequest.KIND_IN;
                collectWritableData(r, c);
                return checkReadWrite(r, sector, false);
            }
            case VirtioBlk.T_OUT -> {
                r.kind = BlkRequest.KIND_OUT;
                collectReadableData(r, c);
                return checkReadWrite(r, sector, true);
            }
            case VirtioBlk.T_FLUSH -> {
                r.kind = BlkRequest.KIND_FLUSH;
                return -1;
            }
            case VirtioBlk.T_GET_ID -> {
                collectWritableData(r, c);
                writeId(r);
                return VirtioBlk.S_OK;
            }
            case VirtioBlk.T_DISCARD, VirtioBlk.T_WRITE_ZEROES -> {
                return parseDiscardWriteZeroes(r, c, type == VirtioBlk.T_WRITE_ZEROES);
            }
            default -> {
                return VirtioBlk.S_UNSUPP;
            }
        }
    }

    private int checkReadWrite(BlkRequest r, long sector, boolean write) {
        long bytes = r.dataBytes();
        if (write && device.isReadOnly()) {
            return VirtioBlk.S_IOERR;
        }
        if (!device.rangeOk(sector, bytes)) {
            return VirtioBlk.S_IOERR;
        }
        r.sector = sector;
        return -1;
    }

    private int parseDiscardWriteZeroes(BlkRequest r, DescriptorChain c, boolean writeZeroes) throws VirtioProtocolException {
        long payload = c.readableBytes() - VirtioBlk.HEADER_BYTES;
        if (!device.negotiated(writeZeroes ? VirtioBlk.F_WRITE_ZEROES : VirtioBlk.F_DISCARD)) {
            return VirtioBlk.S_UNSUPP;
        }
        if (payload > VirtioBlk.DWZ_SEGMENT_BYTES) {
            // one segment per request, as the configuration says (max_*_seg = 1) and QEMU does
            return VirtioBlk.S_UNSUPP;
        }
        if (payload < VirtioBlk.DWZ_SEGMENT_BYTES) {
            throw new VirtioProtocolException(vq.name() + ": " + (writeZeroes ? "write-zeroes" : "discard") + " request at head " + c.head()
                    + " has a " + payload + "-byte segment, less than " + VirtioBlk.DWZ_SEGMENT_BYTES);
        }
        long sector = gather(c, 16, 8);
        long numSectors = gather(c, 24, 4);
        int flags = (int) gather(c, 28, 4);
        if ((flags & ~VirtioBlk.WRITE_ZEROES_FLAG_UNMAP) != 0 || (!writeZeroes && flags != 0)) {
            return VirtioBlk.S_UNSUPP;
        }
        if (device.isReadOnly() || numSectors > device.maxDiscardSectors()) {
            return VirtioBlk.S_IOERR;
        }
        long bytes = numSectors << VirtioBlk.SECTOR_SHIFT;
        if (!device.rangeOk(sector, bytes)) {
            return VirtioBlk.S_IOERR;
        }
        r.kind = writeZeroes ? BlkRequest.KIND_WRITE_ZEROES : BlkRequest.KIND_DISCARD;
        r.sector = sector;
        r.bytes = bytes;
        return -1;
    }

    /** The device-writable buffers but the status byte. */
    private static void collectWritableData(BlkRequest r, DescriptorChain c) {
        int last = c.count() - 1;
        for (int i = c.readableCount(); i <= last; i++) {
            long len = Integer.toUnsignedLong(c.length(i)) - (i == last ? 1 : 0);
            if (len > 0) {
                r.addSegment(c.address(i), (int) len);
            }
        }
    }

    /** The device-readable buffers after the 16-byte header. */
    private static void collectReadableData(BlkRequest r, DescriptorChain c) {
        long skip = VirtioBlk.HEADER_BYTES;
        for (int i = 0; i < c.readableCount(); i++) {
            long len = Integer.toUnsignedLong(c.length(i));
            if (skip >= len) {
                skip -= len;
                continue;
            }
            r.addSegment(c.address(i) + skip, (int) (len - skip));
            skip = 0;
        }
    }

    private void writeId(BlkRequest r) {
        byte[] serial = device.serialBytes();
        // as QEMU: the string, NUL-terminated only when shorter than the 20 bytes
        int n = (int) Math.min(Math.min(serial.length + 1L, VirtioBlk.ID_BYTES), r.dataBytes());
        int done = 0;
        for (int i = 0; i < r.segCount && done < n; i++) {
            int chunk = (int) Math.min(Integer.toUnsignedLong(r.segLen[i]), n - done);
            for (int k = 0; k < chunk; k++) {
                int at = done + k;
                memory.writeU8(r.segAddr[i] + k, at < serial.length ? serial[at] : 0);
            }
            done += chunk;
        }
    }

    /** Little-endian value of {@code n} bytes at byte {@code offset} of the chain's readable buffers. */
    private long gather(DescriptorChain c, long offset, int n) {
        long first = Integer.toUnsignedLong(c.length(0));
        if (offset + n <= first) {
            long a = c.address(0) + offset;
            return n == 8 ? memory.readU64(a) : memory.readU32(a);
        }
        long v = 0;
        for (int k = n - 1; k >= 0; k--) {
            v = v << 8 | byteAt(c, offset + k);
        }
        return v;
    }

    private int byteAt(DescriptorChain c, long offset) {
        long at = offset;
        for (int i = 0; i < c.readableCount(); i++) {
            long len = Integer.toUnsignedLong(c.length(i));
            if (at < len) {
                return memory.readU8(c.address(i) + at);
            }
            at -= len;
        }
        throw new IllegalStateException("byte " + offset + " beyond the readable buffers");
    }

    // ---- the used ring ----

    /** A request's backend work is done with {@code error} (0 or a negative errno). Queue context. */
    void finished(BlkRequest r, int error) {
        if (r.epoch != epoch) {
            r.busy = false;
            device.tracker().release(1);
            return;
        }
        int status = VirtioBlk.S_OK;
        if (error < 0) {
            ErrorPolicy action = device.policyFor(r.isRead()).actionFor(error);
            device.ioError(r, action, error);
            if (action == ErrorPolicy.STOP) {
                parked.add(r);
                device.tracker().release(1);
                return;
            }
            status = action == ErrorPolicy.IGNORE ? VirtioBlk.S_OK : VirtioBlk.S_IOERR;
        }
        complete(r, status);
    }

    /**
     * Answers a request with {@code status}: its status byte and used element are written, and
     * published, with the next flush. Queue context.
     */
    void complete(BlkRequest r, int status) {
        int n = unpublished;
        doneHead[n] = r.head;
        doneStatus[n] = (byte) status;
        unpublished = n + 1;
        if (inPass) {
            if (unpublished >= PUBLISH_BATCH) {
                flushNow();
            }
        } else if (!flushScheduled) {
            flushScheduled = true;
            context.execute(flushTask);
        }
    }

    /**
     * Writes the status bytes and used elements of the requests answered since the last flush and
     * publishes them: the stores to memory the driver is watching happen together, so that waiting
     * for those cache lines (the driver's CPU holds them) is paid once per batch, not per request.
     */
    private void flushNow() {
        // a scheduled flush that finds nothing left (a pass published meanwhile) just clears the flag
        flushScheduled = false;
        int n = unpublished;
        if (n == 0) {
            return;
        }
        for (int i = 0; i < n; i++) {
            BlkRequest r = requests[doneHead[i]];
            memory.writeU8(r.statusAddr, doneStatus[i]);
            vq.push(r.head, r.inLen);
            r.busy = false;
        }
        unpublished = 0;
        if (vq.flush()) {
            device.transport().raiseUsedBuffer();
        }
        device.tracker().release(n);
    }

    /** The errno of a failure, for events and logs. */
    static String reason(int error) {
        return Errno.name(error);
    }

    int epoch() {
        return epoch;
    }

    /** Used in the state: a parked request of this queue, restored on the main loop while stopped. */
    void restoreParked(BlkRequest r) {
        r.busy = true;
        r.epoch = epoch;
        parked.add(r);
    }

    @Override
    public String toString() {
        return vq.toString();
    }

    static boolean eventIdx(long features) {
        return Virtio.has(features, Virtio.F_EVENT_IDX);
    }
}
