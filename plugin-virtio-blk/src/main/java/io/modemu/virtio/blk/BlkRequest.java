package io.modemu.virtio.blk;

import io.modemu.block.BlockBackend;
import io.modemu.block.BlockCompletion;
import io.modemu.block.Errno;
import io.modemu.machine.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One virtio-blk request, parsed from its descriptor chain: what to do, where the data lies in guest
 * RAM, where the status byte goes. A queue owns one instance per descriptor index and reuses it for
 * every request with that head, so the hot path allocates nothing of its own.
 *
 * <p>Threads: filled, started and finished on its queue's context; {@link #complete(int)} is the
 * block backend's callback, on the backend's context, which may be another IOThread.
 */
final class BlkRequest implements BlockCompletion {
    private static final Logger log = LoggerFactory.getLogger(BlkRequest.class);
    static final int KIND_IN = 0;
    static final int KIND_OUT = 1;
    static final int KIND_FLUSH = 2;
    static final int KIND_DISCARD = 3;
    static final int KIND_WRITE_ZEROES = 4;

    final BlkQueue queue;
    final int head;
    final Runnable finishTask = this::finish;
    /** Parts handed to the backend: the segments of a read or write, else 1. */
    private int parts;
    /** Parts not yet completed, counted only when there are several. */
    private final AtomicInteger pending = new AtomicInteger();
    /**
     * A part's failure (0 if none). Written before the part's decrement of {@link #pending} and read
     * after the last one, which orders it: no volatile store per request.
     */
    private int error;

    /** In flight, parked, or otherwise not yet handed back to the driver. */
    boolean busy;
    /** The queue's epoch when the request was popped: a reset in between makes it stale. */
    int epoch;
    int kind;
    long sector;
    /** Bytes of a discard or write-zeroes request. */
    long bytes;
    long statusAddr;
    int inLen;
    int segCount;
    long[] segAddr = new long[2];
    int[] segLen = new int[2];

    BlkRequest(BlkQueue queue, int head) {
        this.queue = queue;
        this.head = head;
    }

    void clearSegments() {
        segCount = 0;
    }

    void addSegment(long addr, int len) {
        if (segCount == segAddr.length) {
            segAddr = Arrays.copyOf(segAddr, segCount * 2);
            segLen = Arrays.copyOf(segLen, segCount * 2);
        }
        segAddr[segCount] = addr;
        segLen[segCount] = len;
        segCount++;
    }

    long dataBytes() {
        long n = 0;
        for (int i = 0; i < segCount; i++) {
            n += Integer.toUnsignedLong(segLen[i]);
        }
        return n;
    }

    /**
     * Hands the request to the block backend (first time, or a retry after a stop). Queue context.
     * Never throws: a host bug while handing a part over fails the request with EIO once the parts
     * already handed over are back, so the request is always answered and its count released.
     */
    void submit() {
        VirtioBlkDevice dev = queue.device;
        BlockBackend backend = dev.backend();
        error = 0;
        int parts = kind == KIND_IN || kind == KIND_OUT ? segCount : 1;
        if (parts == 0) {
            queue.complete(this, VirtioBlk.S_OK);
            return;
        }
        this.parts = parts;
        if (parts > 1) {
            // the backend hands completions over through a queue (or calls back on this thread), which
            // orders this store before their decrements: no fence needed here
            pending.lazySet(parts);
        }
        int handedOver = 0;
        try {
            switch (kind) {
                case KIND_IN, KIND_OUT -> {
                    GuestMemory memory = dev.memory();
                    long offset = sector << VirtioBlk.SECTOR_SHIFT;
                    for (; handedOver < segCount; handedOver++) {
                        long len = Integer.toUnsignedLong(segLen[handedOver]);
                        MemorySegment buffer = memory.slice(segAddr[handedOver], len);
                        if (kind == KIND_IN) {
                            backend.read(offset, buffer, this);
                        } else {
                            backend.write(offset, buffer, this);
                        }
                        offset += len;
                    }
                }
                case KIND_FLUSH -> backend.flush(this);
                case KIND_DISCARD -> backend.discard(sector << VirtioBlk.SECTOR_SHIFT, bytes, this);
                case KIND_WRITE_ZEROES -> backend.writeZeroes(sector << VirtioBlk.SECTOR_SHIFT, bytes, this);
                default -> throw new IllegalStateException("request kind " + kind);
            }
        } catch (RuntimeException e) {
            // a host bug, not the guest's doing (its addresses were checked when the chain was popped)
            log.error("{}: {} at sector {} could not be submitted; it fails with EIO", queue.vq.name(), operation(), sector, e);
            error = -Errno.EIO;
            // the parts never handed over will not complete: drop them; they kept pending above zero until now
            if (parts == 1 ? handedOver == 0 : pending.addAndGet(-(parts - handedOver)) == 0) {
                finishOnQueue();
            }
        }
    }

    /** Block backend callback for one segment. Backend context. */
    @Override
    public void complete(int status) {
        if (status < 0) {
            error = status;
        }
        // one part (the usual request) completes exactly once: no count to keep
        if (parts == 1 || pending.decrementAndGet() == 0) {
            finishOnQueue();
        }
    }

    private void finishOnQueue() {
        if (queue.context.inThread()) {
            finish();
        } else {
            queue.context.execute(finishTask);
        }
    }

    /** Every segment is done: apply the error policy and hand the request back. Queue context. */
    private void finish() {
        if (kind == KIND_IN) {
            GuestMemory memory = queue.device.memory();
            for (int i = 0; i < segCount; i++) {
                memory.markDirty(segAddr[i], Integer.toUnsignedLong(segLen[i]));
            }
        }
        queue.finished(this, error);
    }

    boolean isRead() {
        return kind == KIND_IN;
    }

    String operation() {
        return switch (kind) {
            case KIND_IN -> "read";
            case KIND_OUT -> "write";
            case KIND_FLUSH -> "flush";
            case KIND_DISCARD -> "discard";
            case KIND_WRITE_ZEROES -> "write-zeroes";
            default -> "request " + kind;
        };
    }
}
