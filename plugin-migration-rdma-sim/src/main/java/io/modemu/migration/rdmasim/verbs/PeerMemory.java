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
 * <p>Confined to the link's send thread, which closes it when it stops.
 */
final class PeerMemory implements AutoCloseable {
    private final SharedTable table;
    private final Arena arena;
    private final String peerName;
    private final UserPrincipal owner;
    private final Map<Integer, OpenFile> files = new HashMap<>();

    private record OpenFile(int generation, FileChannel channel, long size) {
    }

    private PeerMemory(SharedTable table, Arena arena, String peerName, UserPrincipal owner) {
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
    static PeerMemory open(Path tableFile, long deviceId, String peerName, UserPrincipal owner) throws IOException {
        if (!Files.isRegularFile(tableFile) || !Files.getOwner(tableFile).equals(owner)) {
            throw new IOException("rdma-sim: peer table " + tableFile + " is not a regular file owned by " + owner.getName());
        }
        Arena arena = Arena.ofShared();
        try {
            return new PeerMemory(SharedTable.open(tableFile, deviceId, arena), arena, peerName, owner);
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
            long pos = off;
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
        } finally {
            table.leave(index);
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
