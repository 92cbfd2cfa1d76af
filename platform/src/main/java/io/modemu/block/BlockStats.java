package io.modemu.block;

import java.util.concurrent.atomic.LongAdder;

/** Per-backend I/O accounting, as {@code query-blockstats} reports it. Thread-safe. */
public final class BlockStats {
    final LongAdder rdOps = new LongAdder();
    final LongAdder rdBytes = new LongAdder();
    final LongAdder wrOps = new LongAdder();
    final LongAdder wrBytes = new LongAdder();
    final LongAdder flushOps = new LongAdder();
    final LongAdder discardOps = new LongAdder();
    final LongAdder zeroOps = new LongAdder();
    final LongAdder failedOps = new LongAdder();
    final java.util.concurrent.atomic.LongAccumulator wrHighest = new java.util.concurrent.atomic.LongAccumulator(Math::max, 0);
    final LongAdder failedRd = new LongAdder();
    final LongAdder failedWr = new LongAdder();
    final LongAdder failedFlush = new LongAdder();
    final LongAdder failedUnmap = new LongAdder();

    public long readOps() {
        return rdOps.sum();
    }

    public long readBytes() {
        return rdBytes.sum();
    }

    public long writeOps() {
        return wrOps.sum();
    }

    public long writeBytes() {
        return wrBytes.sum();
    }

    public long flushOps() {
        return flushOps.sum();
    }

    public long discardOps() {
        return discardOps.sum();
    }

    public long writeZeroesOps() {
        return zeroOps.sum();
    }

    /** The offset after the highest byte written so far. */
    public long writeHighestOffset() {
        return wrHighest.get();
    }

    public long failedOps() {
        return failedOps.sum();
    }

    public long failedReadOps() {
        return failedRd.sum();
    }

    /** Failed writes and write-zeroes. */
    public long failedWriteOps() {
        return failedWr.sum();
    }

    public long failedFlushOps() {
        return failedFlush.sum();
    }

    public long failedDiscardOps() {
        return failedUnmap.sum();
    }
}
