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
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The peer's memory as its adapter would guard it: one-sided requests are checked against the peer's
 * published table (key, protection domain, access rights, bounds) and then copied straight into or
 * out of the file behind the peer's region with positional file I/O ({@code pwrite}/{@code pread}).
 * The peer maps that file shared, so the bytes land in (or come from) the very pages of its memory —
 * for guest RAM backed by a file, an RDMA WRITE lands directly in the destination's guest RAM, with
 * no work on the destination.
 *
 * <p>Why not map the peer's file here and copy with {@code MemorySegment.copy}: every first touch of
 * a page through a new mapping is a page fault in this process, and a migration touches each page of
 * the destination about once; on the reference machine copying through a fresh mapping ran at
 * ~1.4 GB/s and {@code pwrite} at ~3.5 GB/s. Positional I/O is also memory-safe whatever the peer
 * does to its file (a truncated file cannot raise SIGBUS here).
 *
 * <p>The table and the files are the peer's, hence untrusted: every index and offset read from them
 * is bounds-checked against the file this process opened, so a lying peer can make a request fail
 * but cannot make this process touch anything else. Only regular files owned by this user are opened.
 *
 * <p>A large request is placed by several copies at once, as an adapter's DMA engines would: the send
 * thread copies one part and {@code dmaEngines - 1} helper threads the others; the request completes
 * when every part is in place, so completions keep their order.
 *
 * <p>Confined to the link's send thread, which closes it when it stops (the helper threads only copy
 * the parts they are given while the send thread waits for them).
 */
final class PeerMemory implements AutoCloseable {
    private final SharedTable table;
    private final Arena arena;
    private final String peerName;
    private final UserPrincipal owner;
    private final Map<Integer, OpenFile> files = new HashMap<>();
    /** Requests at least this long are split between the DMA engines. */
    static final long PARALLEL_MIN = 256 << 10;
    private final int dmaEngines;
    private java.util.concurrent.ExecutorService engines;

    private record OpenFile(int generation, FileChannel channel, long size) {
    }

    private PeerMemory(SharedTable table, Arena arena, String peerName, UserPrincipal owner, int dmaEngines) {
        this.dmaEngines = dmaEngines;
        this.table = table;
        this.arena = arena;
        this.peerName = peerName;
        this.owner = owner;
    }

    /**
     * Maps the peer's table.
     *
     * @param owner the user whose files may be opened (the owner of this device's own table)
     */
    static PeerMemory open(Path tableFile, long deviceId, String peerName, UserPrincipal owner, int dmaEngines) throws IOException {
        if (!Files.isRegularFile(tableFile) || !Files.getOwner(tableFile).equals(owner)) {
            throw new IOException("rdma-sim: peer table " + tableFile + " is not a regular file owned by " + owner.getName());
        }
        Arena arena = Arena.ofShared();
        try {
            return new PeerMemory(SharedTable.open(tableFile, deviceId, arena), arena, peerName, owner, dmaEngines);
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

    private String access(String op, int rkey, long raddr, List<MemorySegment> local, long length, int pd, Access need) {
        int index = rkey >>> 8;
        if (index >= table.mrCapacity()) {
            return where(op, need, rkey, raddr, length) + ": not a key " + peerName + " issued";
        }
        table.enter(index);
        try {
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
            boolean write = need == Access.REMOTE_WRITE;
            boolean complete = length >= PARALLEL_MIN && dmaEngines > 1 ? place(local, length, file.channel(), off, write)
                    : copy(local, 0, length, file.channel(), off, write);
            return complete ? null : where(op, need, rkey, raddr, length) + ": the file behind the region at " + peerName + " ends early";
        } catch (IOException | IllegalStateException e) {
            // the file went away, or local memory was freed under the request
            return where(op, need, rkey, raddr, length) + ": " + e;
        } finally {
            table.leave(index);
        }
    }

    /**
     * Copies bytes {@code [from, to)} of the scatter-gather list {@code local} to or from the file at
     * {@code filePos + from}. Returns false when the file ended first.
     */
    private static boolean copy(List<MemorySegment> local, long from, long to, FileChannel ch, long filePos, boolean write) throws IOException {
        long at = 0;
        for (MemorySegment s : local) {
            long end = at + s.byteSize();
            if (end > from && at < to) {
                long a = Math.max(from, at);
                long b = Math.min(to, end);
                ByteBuffer buf = s.asSlice(a - at, b - a).asByteBuffer();
                long pos = filePos + a;
                while (buf.hasRemaining()) {
                    int n = write ? ch.write(buf, pos) : ch.read(buf, pos);
                    if (n < 0) {
                        return false;
                    }
                    pos += n;
                }
            }
            at = end;
            if (at >= to) {
                break;
            }
        }
        return true;
    }

    /** Splits one request between the DMA engines (page-aligned parts), copies the first part here and waits for the rest. */
    private boolean place(List<MemorySegment> local, long length, FileChannel ch, long filePos, boolean write) throws IOException {
        if (engines == null) {
            java.util.concurrent.atomic.AtomicInteger n = new java.util.concurrent.atomic.AtomicInteger();
            engines = java.util.concurrent.Executors.newFixedThreadPool(dmaEngines - 1,
                    r -> Thread.ofPlatform().daemon().name("rdma-sim dma engine " + n.incrementAndGet() + " to " + peerName).unstarted(r));
        }
        long part = ((length + dmaEngines - 1) / dmaEngines + 4095) & ~4095L;
        List<java.util.concurrent.Future<Boolean>> others = new java.util.ArrayList<>(dmaEngines - 1);
        for (long from = part; from < length; from += part) {
            long a = from;
            long b = Math.min(length, from + part);
            others.add(engines.submit(() -> copy(local, a, b, ch, filePos, write)));
        }
        boolean ok;
        IOException failure = null;
        try {
            ok = copy(local, 0, Math.min(part, length), ch, filePos, write);
        } catch (IOException e) {
            ok = false;
            failure = e;
        } catch (RuntimeException e) {
            ok = false;
            failure = new IOException(e);
        }
        // every part must be finished before the request completes (or the region may go): wait for all, even after a failure
        for (java.util.concurrent.Future<Boolean> f : others) {
            try {
                ok &= f.get();
            } catch (java.util.concurrent.ExecutionException e) {
                ok = false;
                if (failure == null) {
                    failure = e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                ok &= awaitUninterruptibly(f);
            }
        }
        if (failure != null) {
            throw failure;
        }
        return ok;
    }

    private static boolean awaitUninterruptibly(java.util.concurrent.Future<Boolean> f) {
        while (true) {
            try {
                return f.get();
            } catch (InterruptedException e) {
                // keep waiting: the part is being copied
            } catch (java.util.concurrent.ExecutionException e) {
                return false;
            }
        }
    }

    /** The request, for messages: {@code RDMA WRITE to rkey 0x1234 at 0x7f00... + 4096}. Only built on failure. */
    private static String where(String op, Access need, int rkey, long raddr, long length) {
        return String.format("%s %s rkey 0x%x at 0x%x + %d", op, need == Access.REMOTE_READ ? "from" : "to", rkey, raddr, length);
    }

    private OpenFile file(int fileIndex, int generation) {
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
            OpenFile opened = new OpenFile(generation, ch, ch.size());
            OpenFile old = files.put(fileIndex, opened);
            if (old != null) {
                old.channel().close();
            }
            return opened;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    @Override
    public void close() {
        if (engines != null) {
            engines.shutdownNow();
        }
        for (OpenFile f : files.values()) {
            try {
                f.channel().close();
            } catch (IOException e) {
                // closing anyway
            }
        }
        files.clear();
        try {
            arena.close();
        } catch (IllegalStateException alreadyClosed) {
            // closed by a racing teardown
        }
    }
}
