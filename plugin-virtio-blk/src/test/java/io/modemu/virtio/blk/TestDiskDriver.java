package io.modemu.virtio.blk;

import io.modemu.aio.AioContext;
import io.modemu.block.BlockCompletion;
import io.modemu.block.BlockDriver;
import io.modemu.block.BlockNode;
import io.modemu.options.Options;
import java.lang.foreign.MemorySegment;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Block driver {@code testdisk} for tests: an in-memory disk ({@code size}, default 8M) that may be
 * shared between machines ({@code store=NAME}), with an optional latency ({@code latency-ns}: each
 * request completes on a timer of the requesting context, deterministic under a simulated
 * scheduler) and injectable failures ({@link #failNext}).
 */
final class TestDiskDriver implements BlockDriver {
    enum Op { READ, WRITE, FLUSH, DISCARD, ZEROES }

    private final Map<String, MemorySegment> stores = new ConcurrentHashMap<>();
    private final Map<Op, int[]> faults = new EnumMap<>(Op.class);
    private final Map<Op, AtomicLong> counts = new EnumMap<>(Op.class);
    private final java.util.List<Runnable> held = new java.util.ArrayList<>();
    private boolean holding;
    private volatile long corruptSector = -1;

    TestDiskDriver() {
        for (Op op : Op.values()) {
            counts.put(op, new AtomicLong());
        }
    }

    @Override
    public String name() {
        return "testdisk";
    }

    @Override
    public String description() {
        return "in-memory test disk with latency and fault injection";
    }

    /** Fails the next {@code count} operations of kind {@code op} with {@code -errno} ({@code count} -1: until cleared). */
    synchronized void failNext(Op op, int errno, int count) {
        faults.put(op, new int[] {errno, count});
    }

    /** From now on, completions wait until {@link #release()} (requests stay in flight). */
    synchronized void hold() {
        holding = true;
    }

    /** Lets every held completion go (each after the disk's latency, on its context) and stops holding. */
    void release() {
        java.util.List<Runnable> go;
        synchronized (this) {
            holding = false;
            go = new java.util.ArrayList<>(held);
            held.clear();
        }
        go.forEach(Runnable::run);
    }

    /** Completions held now. */
    synchronized int heldCount() {
        return held.size();
    }

    private synchronized boolean holdIfHolding(Runnable r) {
        if (holding) {
            held.add(r);
        }
        return holding;
    }

    /** Reads covering {@code sector} come back with one byte of it flipped (-1: none). */
    void corruptReadsOf(long sector) {
        corruptSector = sector;
    }

    synchronized void clearFaults() {
        faults.clear();
    }

    long count(Op op) {
        return counts.get(op).get();
    }

    /** The bytes of store {@code name} (to check what the guest wrote). */
    MemorySegment store(String name) {
        return stores.get(name);
    }

    private synchronized int fault(Op op) {
        int[] f = faults.get(op);
        if (f == null || f[1] == 0) {
            return 0;
        }
        if (f[1] > 0) {
            f[1]--;
        }
        return -f[0];
    }

    @Override
    public BlockNode open(Options options) {
        long size = options.size("size", 8L << 20);
        long latency = options.durationNanos("latency-ns", 0, 1);
        boolean readOnly = options.bool("read-only", false);
        String storeName = options.string("store", "default-" + System.identityHashCode(options));
        MemorySegment store = stores.computeIfAbsent(storeName, k -> MemorySegment.ofArray(new byte[(int) size]));
        return new Node(store, latency, readOnly);
    }

    private final class Node implements BlockNode {
        private final MemorySegment store;
        private final long latency;
        private final boolean readOnly;

        Node(MemorySegment store, long latency, boolean readOnly) {
            this.store = store;
            this.latency = latency;
            this.readOnly = readOnly;
        }

        @Override
        public String describe() {
            return "testdisk (" + store.byteSize() + " bytes)";
        }

        @Override
        public long size() {
            return store.byteSize();
        }

        @Override
        public boolean isReadOnly() {
            return readOnly;
        }

        private void finish(AioContext ctx, Op op, Runnable work, BlockCompletion done) {
            counts.get(op).incrementAndGet();
            Runnable r = () -> {
                int f = fault(op);
                if (f == 0) {
                    work.run();
                }
                done.complete(f);
            };
            Runnable start = latency > 0 ? () -> ctx.schedule(latency, r) : () -> ctx.execute(r);
            if (!holdIfHolding(start)) {
                if (latency > 0) {
                    ctx.schedule(latency, r);
                } else {
                    r.run();
                }
            }
        }

        @Override
        public void read(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
            finish(ctx, Op.READ, () -> {
                MemorySegment.copy(store, offset, buffer, 0, buffer.byteSize());
                long bad = corruptSector * 512 + 100;
                if (corruptSector >= 0 && bad >= offset && bad < offset + buffer.byteSize()) {
                    long at = bad - offset;
                    buffer.set(java.lang.foreign.ValueLayout.JAVA_BYTE, at, (byte) ~buffer.get(java.lang.foreign.ValueLayout.JAVA_BYTE, at));
                }
            }, done);
        }

        @Override
        public void write(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
            finish(ctx, Op.WRITE, () -> MemorySegment.copy(buffer, 0, store, offset, buffer.byteSize()), done);
        }

        @Override
        public void flush(AioContext ctx, BlockCompletion done) {
            finish(ctx, Op.FLUSH, () -> { }, done);
        }

        @Override
        public void discard(AioContext ctx, long offset, long length, BlockCompletion done) {
            finish(ctx, Op.DISCARD, () -> { }, done);
        }

        @Override
        public void writeZeroes(AioContext ctx, long offset, long length, BlockCompletion done) {
            finish(ctx, Op.ZEROES, () -> store.asSlice(offset, length).fill((byte) 0), done);
        }

        @Override
        public void close() {
        }
    }
}
