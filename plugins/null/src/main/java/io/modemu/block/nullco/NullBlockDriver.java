package io.modemu.block.nullco;

import io.modemu.aio.AioContext;
import io.modemu.block.BlockCompletion;
import io.modemu.block.BlockDriver;
import io.modemu.block.BlockNode;
import io.modemu.options.Options;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Block driver {@code null-co} (alias {@code null}), as QEMU's: no storage at all. Options:
 * {@code size} (default 1G), {@code read-zeroes=on|off} (default on: reads fill the buffer with zeros;
 * off leaves it untouched, the fastest), {@code latency-ns} (each request completes after this long,
 * on a timer of the requesting context: slow I/O on demand, and deterministic under a simulated
 * scheduler), {@code read-only}.
 */
public final class NullBlockDriver implements BlockDriver {
    @Override
    public String name() {
        return "null-co";
    }

    @Override
    public List<String> aliases() {
        return List.of("null");
    }

    @Override
    public String description() {
        return "reads zeros, discards writes, optional latency (for tests and benchmarks)";
    }

    @Override
    public BlockNode open(Options options) {
        long size = options.size("size", 1L << 30);
        boolean zeroes = options.bool("read-zeroes", true);
        long latency = options.durationNanos("latency-ns", 0, 1);
        boolean readOnly = options.bool("read-only", false);
        return new Node(size, zeroes, latency, readOnly);
    }

    private record Node(long size, boolean readZeroes, long latencyNanos, boolean isReadOnly) implements BlockNode {
        @Override
        public String describe() {
            return "null-co (" + size + " bytes" + (latencyNanos > 0 ? ", " + latencyNanos + " ns latency" : "") + ")";
        }

        private void complete(AioContext ctx, BlockCompletion done) {
            if (latencyNanos > 0) {
                ctx.schedule(latencyNanos, () -> done.complete(0));
            } else {
                done.complete(0);
            }
        }

        @Override
        public void read(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
            if (readZeroes) {
                buffer.fill((byte) 0);
            }
            complete(ctx, done);
        }

        @Override
        public void write(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
            complete(ctx, done);
        }

        @Override
        public void flush(AioContext ctx, BlockCompletion done) {
            complete(ctx, done);
        }

        @Override
        public void discard(AioContext ctx, long offset, long length, BlockCompletion done) {
            complete(ctx, done);
        }

        @Override
        public void writeZeroes(AioContext ctx, long offset, long length, BlockCompletion done) {
            complete(ctx, done);
        }

        @Override
        public void close() {
        }
    }
}
