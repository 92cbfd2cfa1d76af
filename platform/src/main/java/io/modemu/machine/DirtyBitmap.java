package io.modemu.machine;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One bit per guest page of a RAM block, set by every writer of guest RAM (vCPUs and device DMA)
 * and harvested by migration with {@link #harvestInto(long[])}.
 *
 * <p>Thread-safe and lock-free: marking is an atomic OR that is skipped when the bit is already
 * set, harvesting atomically swaps each word with zero, so a write that lands during a harvest is
 * seen by this harvest or the next, never lost.
 */
public final class DirtyBitmap {
    /** Guest page size (TARGET_PAGE_SIZE): 4 KiB. */
    public static final int PAGE_SHIFT = 12;
    public static final int PAGE_SIZE = 1 << PAGE_SHIFT;
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

    private final long pages;
    private final long[] words;
    private volatile boolean harvested;

    public DirtyBitmap(long bytes) {
        this.pages = (bytes + PAGE_SIZE - 1) >>> PAGE_SHIFT;
        this.words = new long[(int) ((pages + 63) >>> 6)];
    }

    /** Number of pages covered. */
    public long pages() {
        return pages;
    }

    /** Number of 64-bit words of the bitmap (for {@link #harvestInto(long[])}). */
    public int words() {
        return words.length;
    }

    /** Marks the pages touched by {@code [offset, offset + length)}. Any thread. */
    public void mark(long offset, long length) {
        if (length <= 0) {
            return;
        }
        long first = offset >>> PAGE_SHIFT;
        long last = (offset + length - 1) >>> PAGE_SHIFT;
        for (long p = first; p <= last; p++) {
            markPage(p);
        }
    }

    /** Marks one page. Any thread. */
    public void markPage(long page) {
        int w = (int) (page >>> 6);
        long bit = 1L << (page & 63);
        if (((long) WORDS.getOpaque(words, w) & bit) == 0) {
            WORDS.getAndBitwiseOr(words, w, bit);
        }
    }

    /** Marks every page (the first pass of a migration sends everything). */
    public void markAll() {
        // setting every bit cannot lose a concurrent mark, and a concurrent harvest takes either the old bits
        // or all of them: plain stores and one fence do (a migration destination runs this inside the downtime,
        // where an atomic operation per word costs milliseconds before the code is compiled)
        int full = (pages & 63) == 0 ? words.length : words.length - 1;
        java.util.Arrays.fill(words, 0, full, -1L);
        if (full < words.length) {
            WORDS.getAndBitwiseOr(words, full, (1L << (pages & 63)) - 1);
        }
        VarHandle.fullFence();
    }

    public boolean isDirty(long page) {
        return ((long) WORDS.getVolatile(words, (int) (page >>> 6)) & (1L << (page & 63))) != 0;
    }

    /**
     * Whether any of the {@code count} pages from {@code firstPage} is dirty, checked a bitmap word at
     * a time (a migration destination asks this for every zero record, inside the downtime).
     */
    public boolean anyDirty(long firstPage, long count) {
        if (firstPage < 0 || count < 0 || firstPage > pages - count) {
            throw new IndexOutOfBoundsException("pages [" + firstPage + ", +" + count + ") of " + pages);
        }
        long end = firstPage + count;
        long p = firstPage;
        while (p < end) {
            int w = (int) (p >>> 6);
            int from = (int) (p & 63);
            int n = (int) Math.min(64 - from, end - p);
            long mask = n == 64 ? -1L : ((1L << n) - 1) << from;
            if (((long) WORDS.getVolatile(words, w) & mask) != 0) {
                return true;
            }
            p += n;
        }
        return false;
    }

    /**
     * Moves the dirty bits into {@code into} (ORed in) and clears them here, atomically per word.
     *
     * @return the number of pages newly harvested
     */
    public long harvestInto(long[] into) {
        harvested = true;
        long count = 0;
        long[] ws = words;
        for (int w = 0; w < ws.length; w++) {
            // a plain read to skip clean words: it runs inside a migration's downtime, often still interpreted,
            // where a VarHandle access per word costs ~2.8 ms for 1 GiB. A bit it misses was set during this
            // harvest and is taken by the next one (writers stopped before the last harvest happen-before it).
            if (ws[w] != 0) {
                long v = (long) WORDS.getAndSet(ws, w, 0L);
                count += Long.bitCount(v & ~into[w]);
                into[w] |= v;
            }
        }
        return count;
    }

    /**
     * Whether {@link #harvestInto} ever ran. Until it does, a clear bit means the page was never
     * written since the block was created (a migration destination uses this to skip pages it knows
     * are still zero).
     */
    public boolean everHarvested() {
        return harvested;
    }

    /** Number of dirty pages now (a snapshot). */
    public long countDirty() {
        long count = 0;
        for (int w = 0; w < words.length; w++) {
            count += Long.bitCount((long) WORDS.getVolatile(words, w));
        }
        return count;
    }
}
