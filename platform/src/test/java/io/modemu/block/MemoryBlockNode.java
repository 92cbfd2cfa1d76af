package io.modemu.block;

import io.modemu.aio.AioContext;
import io.modemu.options.Options;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A test disk held in memory, with an optional latency (a timer on the requesting context, so it is
 * deterministic under a simulated scheduler) and injectable errors.
 */
public final class MemoryBlockNode implements BlockNode {
    private final MemorySegment data;
    private final boolean readOnly;
    private volatile long latencyNanos;
    private final AtomicInteger failNext = new AtomicInteger();
    private volatile int failErrno = Errno.EIO;
    private volatile boolean closed;
    public final AtomicInteger started = new AtomicInteger();
    /** Flushes completed (successfully), counted before their completion is delivered. */
    public final AtomicInteger flushed = new AtomicInteger();
    private volatile long flushLatencyNanos = -1;
    private volatile Runnable onFlush = () -> { };

    public MemoryBlockNode(long size, boolean readOnly, long latencyNanos) {
        this.data = Arena.ofAuto().allocate(size, 4096);
        this.readOnly = readOnly;
        this.latencyNanos = latencyNanos;
    }

    public MemorySegment data() {
        return data;
    }

    public void setLatency(long nanos) {
        this.latencyNanos = nanos;
    }

    /** Flushes take {@code nanos} (instead of the other requests' latency) and run {@code onStart} as they begin. */
    public void setFlush(long nanos, Runnable onStart) {
        this.flushLatencyNanos = nanos;
        this.onFlush = onStart;
    }

    /** A block driver named {@code name} whose every drive is this disk ({@code read-only} is understood). */
    public BlockDriver driver(String name) {
        MemoryBlockNode node = this;
        return new BlockDriver() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public String description() {
                return "test memory disk";
            }

            @Override
            public BlockNode open(Options options) {
                options.bool("read-only", false);
                return node;
            }
        };
    }

    /** The next {@code n} requests fail with {@code -errno}. */
    public void failNext(int n, int errno) {
        failErrno = errno;
        failNext.set(n);
    }

    public boolean isClosed() {
        return closed;
    }

    @Override
    public String describe() {
        return "memory (" + data.byteSize() + " bytes)";
    }

    @Override
    public long size() {
        return data.byteSize();
    }

    @Override
    public boolean isReadOnly() {
        return readOnly;
    }

    private void finish(AioContext ctx, Runnable action, BlockCompletion done) {
        finish(ctx, latencyNanos, action, done);
    }

    private void finish(AioContext ctx, long l, Runnable action, BlockCompletion done) {
        started.incrementAndGet();
        Runnable r = () -> {
            if (failNext.getAndUpdate(v -> Math.max(0, v - 1)) > 0) {
                done.complete(-failErrno);
                return;
            }
            action.run();
            done.complete(0);
        };
        if (l > 0) {
            ctx.schedule(l, r);
        } else {
            r.run();
        }
    }

    @Override
    public void read(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
        finish(ctx, () -> MemorySegment.copy(data, offset, buffer, 0, buffer.byteSize()), done);
    }

    @Override
    public void write(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
        finish(ctx, () -> MemorySegment.copy(buffer, 0, data, offset, buffer.byteSize()), done);
    }

    @Override
    public void flush(AioContext ctx, BlockCompletion done) {
        onFlush.run();
        long l = flushLatencyNanos;
        finish(ctx, l >= 0 ? l : latencyNanos, flushed::incrementAndGet, done);
    }

    @Override
    public void discard(AioContext ctx, long offset, long length, BlockCompletion done) {
        finish(ctx, () -> { }, done);
    }

    @Override
    public void writeZeroes(AioContext ctx, long offset, long length, BlockCompletion done) {
        finish(ctx, () -> data.asSlice(offset, length).fill((byte) 0), done);
    }

    @Override
    public void close() {
        closed = true;
    }
}
