package io.modemu.migration.internal;

import io.modemu.machine.RamBlock;
import io.modemu.migration.MigrationStreamException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.atomic.LongAdder;

/**
 * The destination's side of the RAM section: checks every page record against the RAM blocks before
 * it touches memory, then reads page data straight into guest RAM or clears zero pages (a page that
 * is zero already is left alone, so untouched RAM stays untouched). Thread-safe: the main channel and
 * every data channel load through one loader; each page arrives at most once per pass.
 */
final class RamLoader {
    private final List<RamBlock> blocks;
    private final MigrationProgress progress;
    private final LongAdder pages = new LongAdder();

    private final boolean[] knownZero;
    private final boolean remoteWrites;

    /**
     * @param remoteWrites whether the source may also write guest RAM one-sided: a remote write leaves
     *                     no trace here, so after the first pass no page is known to be zero any more
     */
    RamLoader(List<RamBlock> blocks, MigrationProgress progress, boolean remoteWrites) {
        this.blocks = blocks;
        this.progress = progress;
        this.remoteWrites = remoteWrites;
        this.knownZero = new boolean[blocks.size()];
        for (int i = 0; i < blocks.size(); i++) {
            RamBlock b = blocks.get(i);
            // RAM that started zeroed, where every writer marks what it writes: a page whose bit is
            // clear in a bitmap nobody ever harvested is still zero, and needs no check. A machine that
            // exposed its RAM to one-sided writes before marks all of it afterwards (IncomingMigration).
            knownZero[i] = b.initiallyZero() && !b.dirty().everHarvested();
        }
    }

    /** Pages loaded from the stream so far, every channel. */
    long pages() {
        return pages.sum();
    }

    /** Loads the PAGES record whose header {@code in} just read. */
    void pages(StreamInput in, String where) throws IOException {
        RamBlock b = check(in, Wire.MAX_PAGES_PER_RECORD, where);
        long length = in.b * Wire.PAGE;
        in.into(b.segment().asSlice(in.c, length));
        b.dirty().mark(in.c, length);
        progress.normalPages.add(in.b);
        pages.add(in.b);
    }

    /**
     * Applies the ZERO record whose header {@code in} just read, in pass {@code pass}. In the first pass
     * no page was written one-sided yet (the source writes each page once per pass, and waits until the
     * destination applied a pass before it writes pages of the next one).
     */
    void zero(StreamInput in, String where, long pass) {
        RamBlock b = check(in, Wire.MAX_ZERO_PAGES_PER_RECORD, where);
        MemorySegment ram = b.segment();
        boolean trustBitmap = knownZero[in.a] && (!remoteWrites || pass == 1);
        if (trustBitmap && !b.dirty().anyDirty(in.c / Wire.PAGE, in.b)) {
            // the whole record is still zero here: nothing to read (the common case of a first pass)
            progress.zeroPages.add(in.b);
            pages.add(in.b);
            return;
        }
        for (long i = 0; i < in.b; ) {
            long chunk = Math.min(64, in.b - i);
            long off = in.c + i * Wire.PAGE;
            if (trustBitmap && !b.dirty().anyDirty(off / Wire.PAGE, chunk)) {
                i += chunk;
                continue;
            }
            if (!PageScanner.isZero(ram, off, chunk * Wire.PAGE)) {
                for (long j = 0; j < chunk; j++) {
                    long p = off + j * Wire.PAGE;
                    if (!PageScanner.isZero(ram, p)) {
                        ram.asSlice(p, Wire.PAGE).fill((byte) 0);
                        b.dirty().markPage(p / Wire.PAGE);
                    }
                }
            }
            i += chunk;
        }
        progress.zeroPages.add(in.b);
        pages.add(in.b);
    }

    private RamBlock check(StreamInput in, long maxPages, String where) {
        if (in.flags == 0 && in.a < blocks.size() && in.b >= 1 && in.b <= maxPages && in.c >= 0 && in.c <= blocks.get(in.a).size() - in.b * Wire.PAGE
                && in.c % Wire.PAGE == 0) {
            return blocks.get(in.a);
        }
        String record = Wire.typeName(in.type) + " record" + where;
        if (in.flags != 0) {
            throw fail(record + " has unknown flags 0x" + Integer.toHexString(in.flags));
        }
        if (in.a >= blocks.size()) {
            throw fail(record + " names RAM block " + in.a + ", but the machine has " + blocks.size());
        }
        RamBlock b = blocks.get(in.a);
        if (in.b < 1 || in.b > maxPages) {
            throw fail(record + " for block '" + b.name() + "' has " + in.b + " pages, outside 1.." + maxPages);
        }
        if (in.c < 0 || in.c > b.size() - in.b * Wire.PAGE) {
            throw fail(record + " writes [0x" + Long.toHexString(in.c) + ", +" + in.b * Wire.PAGE + ") outside RAM block '" + b.name() + "' ("
                    + b.size() + " bytes)");
        }
        if (in.c % Wire.PAGE != 0) {
            throw fail(record + " for block '" + b.name() + "' has offset 0x" + Long.toHexString(in.c) + ", not page-aligned");
        }
        return b;
    }

    private static MigrationStreamException fail(String message) {
        return new MigrationStreamException("section 'ram': " + message);
    }
}
