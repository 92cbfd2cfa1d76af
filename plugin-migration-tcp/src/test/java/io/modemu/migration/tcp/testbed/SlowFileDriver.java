package io.modemu.migration.tcp.testbed;

import io.modemu.aio.AioContext;
import io.modemu.block.BlockCompletion;
import io.modemu.block.BlockDriver;
import io.modemu.block.BlockNode;
import io.modemu.block.file.FileBlockDriver;
import io.modemu.options.Options;
import java.lang.foreign.MemorySegment;

/**
 * Test block driver {@code slow-file}: the stock {@code file} driver (same options) behind a delay of
 * {@code latency-ns} per request, the slow disk of the seed's scenario. A request waits on a timer of
 * the backend's context before the file driver carries it out, so a write in flight has not reached
 * the image yet: only its completion says it has. (The stock {@code null-co} driver has a latency too,
 * but it keeps no data, and disk-verify verifies what it reads back.)
 */
public final class SlowFileDriver implements BlockDriver {
    public static final String NAME = "slow-file";
    private final FileBlockDriver file = new FileBlockDriver();

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String description() {
        return "raw images through the file driver, each request delayed by latency-ns (tests)";
    }

    @Override
    public BlockNode open(Options options) {
        long latency = options.durationNanos("latency-ns", 0, 1);
        return new Node(file.open(options), latency);
    }

    private record Node(BlockNode file, long latencyNanos) implements BlockNode {
        @Override
        public String describe() {
            return file.describe() + " (" + latencyNanos + " ns latency)";
        }

        @Override
        public long size() {
            return file.size();
        }

        @Override
        public boolean isReadOnly() {
            return file.isReadOnly();
        }

        @Override
        public boolean supportsDiscard() {
            return file.supportsDiscard();
        }

        @Override
        public void read(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
            ctx.schedule(latencyNanos, () -> file.read(ctx, offset, buffer, done));
        }

        @Override
        public void write(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
            ctx.schedule(latencyNanos, () -> file.write(ctx, offset, buffer, done));
        }

        @Override
        public void flush(AioContext ctx, BlockCompletion done) {
            ctx.schedule(latencyNanos, () -> file.flush(ctx, done));
        }

        @Override
        public void discard(AioContext ctx, long offset, long length, BlockCompletion done) {
            ctx.schedule(latencyNanos, () -> file.discard(ctx, offset, length, done));
        }

        @Override
        public void writeZeroes(AioContext ctx, long offset, long length, BlockCompletion done) {
            ctx.schedule(latencyNanos, () -> file.writeZeroes(ctx, offset, length, done));
        }

        @Override
        public void close() {
            file.close();
        }
    }
}
