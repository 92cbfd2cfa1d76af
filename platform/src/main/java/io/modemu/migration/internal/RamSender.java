package io.modemu.migration.internal;

import io.modemu.machine.RamBlock;
import java.io.IOException;
import java.util.List;

/**
 * The source's side of the RAM section: which pages are still to send (the engine's own bitmap,
 * filled from the machine's dirty bitmaps at each synchronisation) and the walk over them. Migration
 * thread only.
 */
final class RamSender {
    /** Words of bitmap per job for a data channel: 512 pages, 2 MiB. */
    static final int CHUNK_WORDS = 8;

    private final List<RamBlock> blocks;
    private final long[][] toSend;
    /** Per block, during the first pass: the pages written since the block was created; null where unknown. */
    private long[][] written;
    private long pending;

    RamSender(List<RamBlock> blocks) {
        this.blocks = blocks;
        this.toSend = new long[blocks.size()][];
        for (int i = 0; i < blocks.size(); i++) {
            toSend[i] = new long[blocks.get(i).dirty().words()];
        }
    }

    /**
     * The first pass sends everything: drops what the dirty bitmaps collected so far (a write from
     * now on is marked again) and marks every page to send.
     */
    void setup() {
        pending = 0;
        written = new long[blocks.size()][];
        for (int i = 0; i < blocks.size(); i++) {
            RamBlock b = blocks.get(i);
            // RAM that started zeroed and whose bitmap was never harvested: every writer marked what it
            // wrote, so a clear bit is a page still zero, sent as such without reading it
            boolean known = b.initiallyZero() && !b.dirty().everHarvested();
            long[] harvested = new long[toSend[i].length];
            b.dirty().harvestInto(harvested);
            written[i] = known ? harvested : null;
            long pages = b.dirty().pages();
            long[] bits = toSend[i];
            for (int w = 0; w < bits.length; w++) {
                long left = pages - ((long) w << 6);
                bits[w] = left >= 64 ? -1L : (1L << left) - 1;
            }
            pending += pages;
        }
    }

    /** The pages of word {@code w} of block {@code bi} known to be zero without looking (first pass only). */
    private long knownZero(int bi, int w) {
        long[] wr = written == null ? null : written[bi];
        return wr == null ? 0 : ~wr[w];
    }

    /** Moves what the guest and devices dirtied since the last sync into the pages to send; returns the newly dirty pages. */
    long sync() {
        // what the first pass knew holds for the first pass only: later passes look at every page
        written = null;
        long newly = 0;
        for (int i = 0; i < blocks.size(); i++) {
            newly += blocks.get(i).dirty().harvestInto(toSend[i]);
        }
        pending += newly;
        return newly;
    }

    /** Pages still to send. */
    long pending() {
        return pending;
    }

    /** Sends every pending page through {@code scanner}, on the caller's thread. */
    void sendPass(PageScanner scanner, Abort abort, MigrationProgress progress) throws IOException {
        for (int bi = 0; bi < blocks.size(); bi++) {
            long[] bits = toSend[bi];
            for (int w = 0; w < bits.length; w++) {
                long word = bits[w];
                if (word == 0) {
                    continue;
                }
                abort.check();
                bits[w] = 0;
                scanner.word(bi, w, word, knownZero(bi, w));
                pending -= Long.bitCount(word);
                progress.remainingPages(pending);
                progress.tick();
            }
        }
        scanner.finish();
        progress.remainingPages(pending);
    }

    /** Hands every pending page to the data channels, a chunk at a time. */
    void dispatchPass(MultifdSender multifd, MigrationProgress progress, Runnable onWait) {
        for (int bi = 0; bi < blocks.size(); bi++) {
            long[] bits = toSend[bi];
            for (int w = 0; w < bits.length; w += CHUNK_WORDS) {
                int n = Math.min(CHUNK_WORDS, bits.length - w);
                long count = 0;
                for (int j = 0; j < n; j++) {
                    count += Long.bitCount(bits[w + j]);
                }
                if (count == 0) {
                    continue;
                }
                long[] chunk = new long[n];
                System.arraycopy(bits, w, chunk, 0, n);
                java.util.Arrays.fill(bits, w, w + n, 0L);
                long[] zeros = null;
                if (written != null && written[bi] != null) {
                    zeros = new long[n];
                    for (int j = 0; j < n; j++) {
                        zeros[j] = knownZero(bi, w + j);
                    }
                }
                multifd.dispatch(bi, w, chunk, zeros, onWait);
                pending -= count;
                progress.remainingPages(pending);
                progress.tick();
            }
        }
        progress.remainingPages(pending);
    }
}
