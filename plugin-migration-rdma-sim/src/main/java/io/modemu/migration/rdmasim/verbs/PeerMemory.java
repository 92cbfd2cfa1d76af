package io.modemu.migration.rdmasim.verbs;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.UserPrincipal;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The peer's memory as its adapter would guard it: one-sided requests are checked against the peer's
 * published table (key, protection domain, access rights, bounds) and then copied straight into or
 * out of the file behind the peer's region. The peer maps that file shared, so the bytes land in (or
 * come from) the very pages of its memory — for guest RAM backed by a file, an RDMA WRITE lands
 * directly in the destination's guest RAM, with no work on the destination.
 *
 * <p>How the bytes move. This process maps each of the peer's files shared too, and an RDMA WRITE is
 * a plain memory copy into that mapping. What costs is not the copy but this process's page tables:
 * the first touch of each 4 KiB page through a new mapping is a page fault, and a migration touches
 * each page of the destination about once. So, as an adapter fetches its work requests and their
 * address translations ahead of the data, a <em>translation prefetcher</em> (one thread per
 * connection) maps the pages of the writes already posted ({@link #prefetch}) while the send thread
 * copies the ones before them; a write whose pages are not mapped yet maps them itself first. Where a
 * file cannot be mapped, and for RDMA READ, positional file I/O ({@code pwrite}/{@code pread}) moves
 * the bytes instead ({@link FabricSettings#mappedWrites()} false, the address option {@code copy=pwrite},
 * makes writes use it too).
 *
 * <p>The table and the files are the peer's, hence untrusted: every index and offset read from them
 * is bounds-checked against the file this process opened, so a lying peer can make a request fail
 * but cannot make this process touch anything else. Only regular files owned by this user are opened.
 * A peer that shrinks its file under a mapping makes the copy fault (SIGBUS); the JVM turns that
 * into an {@link InternalError} in the copying thread, which fails the request with a remote access
 * error like any other bad access.
 *
 * <p>The send thread owns it and closes it when it stops; the prefetcher only reads the table and
 * touches mapped pages.
 */
final class PeerMemory implements AutoCloseable {
    private final SharedTable table;
    private final Arena arena;
    private final String peerName;
    private final UserPrincipal owner;
    /** Guarded by {@code this}: the send thread and the prefetcher both open files. */
    private final Map<Integer, OpenFile> files = new HashMap<>();
    /** Null when writes use positional file I/O only ({@link FabricSettings#mappedWrites()} false). */
    private final Prefetcher prefetcher;
    /** Channels of files replaced by a newer generation, closed with the rest. Guarded by {@code this}. */
    private final List<FileChannel> retired = new ArrayList<>();

    private static final int PAGE_SHIFT = 12;

    /**
     * One of the peer's files: its channel and, unless it could not be mapped, a shared mapping with the
     * pages this process's page tables already map.
     */
    private record OpenFile(int generation, FileChannel channel, long size, MemorySegment map, MappedPages mapped) {
        /** {@code length} > 0. */
        boolean allMapped(long off, long length) {
            return mapped.all(off >>> PAGE_SHIFT, (off + length - 1) >>> PAGE_SHIFT);
        }

        /** Maps the pages of {@code [off, off + length)} into this process (read faults: no data changes); {@code length} > 0. */
        void mapPages(long off, long length) {
            long first = off & -(1L << PAGE_SHIFT);
            long end = Math.min(size, off + length);
            map.asSlice(first, end - first).load();
            mapped.mark(first >>> PAGE_SHIFT, (end - 1) >>> PAGE_SHIFT);
        }
    }

    /**
     * A bit per page of a file: mapped in this process. A hint only (a page whose bit is wrong costs a
     * fault, nothing else), so concurrent markers need no more than atomic words. The bits live in
     * leaves of 1 GiB's worth of pages (32 KiB), made when a page of theirs is first marked: what it
     * holds follows what this process wrote, not the size the peer claims for its file.
     */
    static final class MappedPages {
        private static final int WORDS_PER_LEAF_SHIFT = 12;
        private final ConcurrentHashMap<Long, AtomicLongArray> leaves = new ConcurrentHashMap<>();

        private long word(long w) {
            AtomicLongArray leaf = leaves.get(w >>> WORDS_PER_LEAF_SHIFT);
            return leaf == null ? 0 : leaf.get((int) (w & ((1 << WORDS_PER_LEAF_SHIFT) - 1)));
        }

        private AtomicLongArray leaf(long w) {
            return leaves.computeIfAbsent(w >>> WORDS_PER_LEAF_SHIFT, k -> new AtomicLongArray(1 << WORDS_PER_LEAF_SHIFT));
        }

        /** Whether pages {@code first..last} (inclusive) are all marked. */
        boolean all(long first, long last) {
            for (long p = first; p <= last; p++) {
                if ((p & 63) == 0 && last - p >= 63) {
                    if (word(p >>> 6) != -1L) {
                        return false;
                    }
                    p += 63;
                } else if ((word(p >>> 6) & (1L << p)) == 0) {
                    return false;
                }
            }
            return true;
        }

        /** Leaves made so far (tests). */
        int leafCount() {
            return leaves.size();
        }

        /** Marks pages {@code first..last} (inclusive). */
        void mark(long first, long last) {
            for (long p = first; p <= last; p++) {
                int i = (int) ((p >>> 6) & ((1 << WORDS_PER_LEAF_SHIFT) - 1));
                if ((p & 63) == 0 && last - p >= 63) {
                    leaf(p >>> 6).set(i, -1L);
                    p += 63;
                } else {
                    long bit = 1L << p;
                    leaf(p >>> 6).getAndUpdate(i, v -> v | bit);
                }
            }
        }
    }

    /** Where a checked one-sided request lands: a file and the offset in it. */
    private record Target(OpenFile file, long offset) {
    }

    private PeerMemory(SharedTable table, Arena arena, String peerName, UserPrincipal owner, boolean mappedWrites) {
        this.table = table;
        this.arena = arena;
        this.peerName = peerName;
        this.owner = owner;
        this.prefetcher = mappedWrites ? new Prefetcher() : null;
    }

    /**
     * Maps the peer's table.
     *
     * @param owner        the user whose files may be opened (the owner of this device's own table)
     * @param mappedWrites copy RDMA WRITE data through mappings of the peer's files (else {@code pwrite})
     */
    static PeerMemory open(Path tableFile, long deviceId, String peerName, UserPrincipal owner, boolean mappedWrites) throws IOException {
        if (!Files.isRegularFile(tableFile) || !Files.getOwner(tableFile).equals(owner)) {
            throw new IOException("rdma-sim: peer table " + tableFile + " is not a regular file owned by " + owner.getName());
        }
        Arena arena = Arena.ofShared();
        try {
            return new PeerMemory(SharedTable.open(tableFile, deviceId, arena), arena, peerName, owner, mappedWrites);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The state of the peer's queue pair, or null when it is gone. */
    QpState queuePairState(int slot, int generation) {
        return table.qpState(slot, generation);
    }

    /**
     * RDMA WRITE (or the data of a WRITE with immediate): copies {@code src} to {@code remoteAddress}.
     *
     * @return null when the data was placed, otherwise why the peer's adapter refused it
     */
    String write(String op, int rkey, long remoteAddress, List<MemorySegment> src, long length, int pd) {
        return access(op, rkey, remoteAddress, src, length, pd, Access.REMOTE_WRITE);
    }

    /** RDMA READ: copies the peer's memory at {@code remoteAddress} into {@code dst}. */
    String read(int rkey, long remoteAddress, List<MemorySegment> dst, long length, int pd) {
        return access("RDMA READ", rkey, remoteAddress, dst, length, pd, Access.REMOTE_READ);
    }

    /**
     * Maps the pages an RDMA WRITE posted on this connection will land in, ahead of it, on the
     * prefetcher thread. Any thread; never blocks; drops the hint when the prefetcher is far behind.
     */
    void prefetch(int rkey, long remoteAddress, long length, int pd) {
        if (prefetcher != null && length > 0) {
            prefetcher.offer(new Hint(rkey, remoteAddress, length, pd));
        }
    }

    private String access(String op, int rkey, long raddr, List<MemorySegment> local, long length, int pd, Access need) {
        int index = rkey >>> 8;
        if (index >= table.mrCapacity()) {
            return where(op, need, rkey, raddr, length) + ": not a key " + peerName + " issued";
        }
        table.enter(index);
        try {
            Object t = resolve(op, index, rkey, raddr, length, pd, need);
            if (t instanceof String err) {
                return err;
            }
            Target target = (Target) t;
            OpenFile file = target.file();
            long pos = target.offset();
            if (need == Access.REMOTE_WRITE && file.map() != null && length > 0) {
                if (!file.allMapped(pos, length)) {
                    file.mapPages(pos, length);
                }
                for (MemorySegment s : local) {
                    MemorySegment.copy(s, 0, file.map(), pos, s.byteSize());
                    pos += s.byteSize();
                }
                return null;
            }
            for (MemorySegment s : local) {
                ByteBuffer b = s.asByteBuffer();
                while (b.hasRemaining()) {
                    int n = need == Access.REMOTE_WRITE ? file.channel().write(b, pos) : file.channel().read(b, pos);
                    if (n < 0) {
                        return where(op, need, rkey, raddr, length) + ": the file behind the region at " + peerName + " ends early";
                    }
                    pos += n;
                }
            }
            return null;
        } catch (IOException | IllegalStateException e) {
            // the file went away, or local memory was freed under the request
            return where(op, need, rkey, raddr, length) + ": " + e;
        } catch (InternalError e) {
            // a fault in the copy: the peer shrank the file under the mapping (SIGBUS)
            return where(op, need, rkey, raddr, length) + ": the file behind the region at " + peerName + " faulted (shrunk under the mapping?): " + e.getMessage();
        } finally {
            table.leave(index);
        }
    }

    /**
     * Checks a request against region {@code index} of the peer's table (between {@link SharedTable#enter}
     * and {@link SharedTable#leave}) and finds where it lands.
     *
     * @return the {@link Target}, or why the peer's adapter refuses the request
     */
    private Object resolve(String op, int index, int rkey, long raddr, long length, int pd, Access need) {
        SharedTable.MrEntry e = table.readMr(index);
        if (e == null || e.key() != rkey) {
            return where(op, need, rkey, raddr, length) + ": no memory region with this key is registered at " + peerName
                    + " (never registered, or deregistered)";
        }
        if (e.pd() != pd) {
            return where(op, need, rkey, raddr, length) + ": the region belongs to protection domain " + e.pd() + " of " + peerName
                    + ", not to the queue pair's protection domain " + pd;
        }
        if ((e.access() & need.bit) == 0) {
            return where(op, need, rkey, raddr, length) + ": the region was registered without " + need + " (access "
                    + Access.fromBits(e.access()) + ")";
        }
        if (e.length() < 0 || raddr - e.address() < 0 || length > e.length() || raddr - e.address() > e.length() - length) {
            return where(op, need, rkey, raddr, length)
                    + String.format(": outside the memory region [0x%x, 0x%x) of %s", e.address(), e.address() + e.length(), peerName);
        }
        OpenFile file = file(e.fileIndex(), e.fileGeneration());
        if (file == null) {
            return where(op, need, rkey, raddr, length) + ": the file behind the region at " + peerName + " cannot be opened";
        }
        long off = e.fileOffset() + (raddr - e.address());
        if (e.fileOffset() < 0 || off < 0 || off > file.size() - length) {
            return where(op, need, rkey, raddr, length) + ": the region's file offset lies outside the file " + peerName + " published";
        }
        return new Target(file, off);
    }

    /** The request, for messages: {@code RDMA WRITE to rkey 0x1234 at 0x7f00... + 4096}. Only built on failure. */
    private static String where(String op, Access need, int rkey, long raddr, long length) {
        return String.format("%s %s rkey 0x%x at 0x%x + %d", op, need == Access.REMOTE_READ ? "from" : "to", rkey, raddr, length);
    }

    private synchronized OpenFile file(int fileIndex, int generation) {
        OpenFile f = files.get(fileIndex);
        if (f != null && f.generation() == generation && f.channel().isOpen()) {
            return f;
        }
        SharedTable.FileEntry entry = table.readFile(fileIndex);
        if (entry == null || entry.generation() != generation) {
            return null;
        }
        try {
            if (!Files.isRegularFile(entry.path()) || !Files.getOwner(entry.path()).equals(owner)) {
                return null;
            }
            FileChannel ch = FileChannel.open(entry.path(), StandardOpenOption.READ, StandardOpenOption.WRITE);
            long size = ch.size();
            MemorySegment map = null;
            if (prefetcher != null && size > 0) {
                try {
                    map = ch.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
                } catch (IOException | RuntimeException notMappable) {
                    // positional I/O then
                }
            }
            OpenFile opened = new OpenFile(generation, ch, size, map, map == null ? null : new MappedPages());
            // an older generation's channel stays open (a request may still use it) until close
            OpenFile old = files.put(fileIndex, opened);
            if (old != null) {
                retired.add(old.channel());
            }
            return opened;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** How much of a write the prefetcher maps before it checks whether it was stopped. */
    private static final long PREFETCH_PIECE = 1L << 20;

    /** A write posted on the connection, for the prefetcher. */
    private record Hint(int rkey, long remoteAddress, long length, int pd) {
    }

    /** The translation prefetcher: maps the pages of posted writes, in order, on a thread of its own (started at the first hint). */
    private final class Prefetcher {
        private final ArrayBlockingQueue<Hint> hints = new ArrayBlockingQueue<>(1024);
        private Thread thread;
        private volatile boolean stopped;

        void offer(Hint h) {
            if (!hints.offer(h)) {
                return;
            }
            synchronized (this) {
                if (thread == null && !stopped) {
                    thread = Thread.ofPlatform().daemon().name("rdma-sim prefetch " + peerName).start(this::run);
                }
            }
        }

        private void run() {
            try {
                while (!stopped) {
                    map(hints.take());
                }
            } catch (InterruptedException stop) {
                // close
            }
        }

        private void map(Hint h) {
            int index = h.rkey() >>> 8;
            if (index >= table.mrCapacity()) {
                return;
            }
            table.enter(index);
            try {
                if (resolve("prefetch", index, h.rkey(), h.remoteAddress(), h.length(), h.pd(), Access.REMOTE_WRITE) instanceof Target t
                        && t.file().map() != null && h.length() > 0 && !t.file().allMapped(t.offset(), h.length())) {
                    // a piece at a time, so that a stop does not wait for a whole large write's pages
                    for (long done = 0; done < h.length() && !stopped; done += PREFETCH_PIECE) {
                        long n = Math.min(PREFETCH_PIECE, h.length() - done);
                        if (!t.file().allMapped(t.offset() + done, n)) {
                            t.file().mapPages(t.offset() + done, n);
                        }
                    }
                }
            } catch (RuntimeException | InternalError e) {
                // only a hint: the write itself reports what is wrong
            } finally {
                table.leave(index);
            }
        }

        /**
         * Stops the thread and waits for it (at most 5 s): the mapping it touches goes away next, and a
         * region it entered must be left first, or the peer's deregistration waits for it in vain. The
         * caller is often interrupted already (the send thread, woken by the link going down), so the
         * wait ignores interrupts and restores the flag after.
         */
        void stop() {
            Thread t;
            synchronized (this) {
                stopped = true;
                t = thread;
            }
            if (t == null) {
                return;
            }
            t.interrupt();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            boolean interrupted = false;
            long left;
            while (t.isAlive() && (left = deadline - System.nanoTime()) > 0) {
                try {
                    t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public void close() {
        if (prefetcher != null) {
            prefetcher.stop();
        }
        synchronized (this) {
            closeFiles();
        }
        try {
            arena.close();
        } catch (IllegalStateException alreadyClosed) {
            // closed by a racing teardown
        }
    }

    private void closeFiles() {
        for (FileChannel c : retired) {
            try {
                c.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
        for (OpenFile f : files.values()) {
            try {
                f.channel().close();
            } catch (IOException e) {
                // closing anyway
            }
        }
        files.clear();
        retired.clear();
    }
}
