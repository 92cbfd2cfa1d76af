package io.modemu.migration.internal;

import io.modemu.machine.RamBlock;
import io.modemu.migration.RemoteRamWriter;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * Turns dirty-bitmap words into records on one output: each dirty page is checked for zero, runs of
 * adjacent pages of the same kind become one ZERO record or one PAGES record (up to 1 MiB of page
 * data sent straight from guest RAM), or, with a one-sided writer, one remote write. Used by one
 * thread (the migration thread, or one data-channel sender).
 */
final class PageScanner {
    /** Zeros to compare with: a whole bitmap word's worth of pages (256 KiB). */
    private static final MemorySegment ZEROS = Arena.global().allocate(64L * Wire.PAGE);

    private final List<RamBlock> blocks;
    private final StreamOutput out;
    private final RemoteRamWriter remote;
    private final RateLimiter limiter;
    private final MigrationProgress progress;
    private final Runnable onWait;
    private int runBlock = -1;
    private long runStart;
    private int runLength;
    private boolean runZero;
    private long pages;
    private Barrier beforeRemote;

    /** Something to wait for before a one-sided write. */
    interface Barrier {
        void await() throws IOException;
    }

    /**
     * @param remote one-sided writer for non-zero pages, or null to send them in the stream
     * @param onWait run while the rate limiter holds the sender back (keep-alive), or null
     */
    PageScanner(List<RamBlock> blocks, StreamOutput out, RemoteRamWriter remote, RateLimiter limiter, MigrationProgress progress, Runnable onWait) {
        this.blocks = blocks;
        this.out = out;
        this.remote = remote;
        this.limiter = limiter;
        this.progress = progress;
        this.onWait = onWait;
    }

    /**
     * Runs {@code barrier} once, before this scanner's next one-sided write (none if no page needs one):
     * a pass whose dirty pages are all zero, or that has none, never waits for it.
     */
    void beforeNextRemoteWrite(Barrier barrier) {
        this.beforeRemote = barrier;
    }

    /** Pages this scanner put in its stream (normal and zero), for the totals in EOF. */
    long pagesInStream() {
        return pages;
    }

    /** Whether the page at {@code offset} holds only zeros. A page of data usually shows it in its first or last word. */
    static boolean isZero(MemorySegment ram, long offset) {
        if (ram.get(ValueLayout.JAVA_LONG_UNALIGNED, offset) != 0 || ram.get(ValueLayout.JAVA_LONG_UNALIGNED, offset + Wire.PAGE - 8) != 0) {
            return false;
        }
        return MemorySegment.mismatch(ram, offset, offset + Wire.PAGE, ZEROS, 0, Wire.PAGE) < 0;
    }

    /** Whether {@code [offset, offset + length)} holds only zeros, checked in chunks of 256 KiB. */
    static boolean isZero(MemorySegment ram, long offset, long length) {
        for (long done = 0; done < length; ) {
            long n = Math.min(ZEROS.byteSize(), length - done);
            if (MemorySegment.mismatch(ram, offset + done, offset + done + n, ZEROS, 0, n) >= 0) {
                return false;
            }
            done += n;
        }
        return true;
    }

    /** Sends the pages whose bits are set in {@code bits}, word {@code wordIndex} of block {@code blockIndex}'s bitmap. */
    void word(int blockIndex, long wordIndex, long bits) throws IOException {
        word(blockIndex, wordIndex, bits, 0);
    }

    /**
     * Sends the pages whose bits are set in {@code bits}, word {@code wordIndex} of block {@code blockIndex}'s bitmap;
     * the pages whose bits are set in {@code knownZero} are zero without looking (never written since the block was created).
     */
    void word(int blockIndex, long wordIndex, long bits, long knownZero) throws IOException {
        MemorySegment ram = blocks.get(blockIndex).segment();
        long base = wordIndex << 6;
        if (bits == -1L && (knownZero == -1L || isZero(ram, base * Wire.PAGE, 64L * Wire.PAGE))) {
            // 64 zero pages in one comparison: the common case of untouched RAM in the first pass
            if (runLength > 0 && (!runZero || runBlock != blockIndex || base != runStart + runLength
                    || runLength + 64 > Wire.MAX_ZERO_PAGES_PER_RECORD)) {
                emit();
            }
            if (runLength == 0) {
                runBlock = blockIndex;
                runStart = base;
                runZero = true;
            }
            runLength += 64;
            return;
        }
        while (bits != 0) {
            long page = base + Long.numberOfTrailingZeros(bits);
            bits &= bits - 1;
            boolean zero = (knownZero & (1L << (page - base))) != 0 || isZero(ram, page * Wire.PAGE);
            if (runLength > 0 && runBlock == blockIndex && page == runStart + runLength && zero == runZero
                    && runLength < (zero ? Wire.MAX_ZERO_PAGES_PER_RECORD : Wire.MAX_PAGES_PER_RECORD)) {
                runLength++;
                continue;
            }
            emit();
            runBlock = blockIndex;
            runStart = page;
            runLength = 1;
            runZero = zero;
        }
    }

    /** Sends the run in progress. Call at the end of every batch of words. */
    void finish() throws IOException {
        emit();
    }

    private void emit() throws IOException {
        if (runLength == 0) {
            return;
        }
        long offset = runStart * Wire.PAGE;
        long bytes = (long) runLength * Wire.PAGE;
        int n = runLength;
        runLength = 0;
        if (runZero) {
            limiter.acquire(Wire.HEADER, onWait);
            out.record(Wire.ZERO, 0, runBlock, n, offset);
            progress.zeroPages.add(n);
            pages += n;
        } else if (remote != null) {
            Barrier b = beforeRemote;
            if (b != null) {
                beforeRemote = null;
                b.await();
            }
            limiter.acquire(bytes, onWait);
            remote.write(runBlock, offset, bytes);
            progress.transferred.add(bytes);
            progress.normalPages.add(n);
        } else {
            limiter.acquire(Wire.HEADER + bytes, onWait);
            out.record(Wire.PAGES, 0, runBlock, n, offset);
            out.pages(blocks.get(runBlock).segment().asSlice(offset, bytes));
            progress.normalPages.add(n);
            pages += n;
        }
    }
}
