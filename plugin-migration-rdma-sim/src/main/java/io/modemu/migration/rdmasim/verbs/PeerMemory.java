package io.modemu.migration.rdmasim.verbs;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
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
 * out of the peer's memory through a mapping of the file behind it. For guest RAM backed by a file,
 * an RDMA WRITE lands directly in the destination's guest RAM.
 *
 * <p>The table and the files are the peer's, hence untrusted: every index and offset read from them
 * is bounds-checked against this process's own mappings, so a lying peer can make a request fail but
 * cannot make this process touch memory outside what it mapped. Only regular files owned by this
 * user are mapped.
 *
 * <p>Confined to the link's send thread, which closes it when it stops.
 */
final class PeerMemory implements AutoCloseable {
    private final SharedTable table;
    private final Arena arena;
    private final String peerName;
    private final UserPrincipal owner;
    private final Map<Integer, Mapped> files = new HashMap<>();

    private record Mapped(int generation, MemorySegment segment) {
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
     * @param owner the user whose files may be mapped (the owner of this device's own table)
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
        String where = String.format("%s to rkey 0x%x at 0x%x + %d", op, rkey, raddr, length);
        if (need == Access.REMOTE_READ) {
            where = String.format("%s from rkey 0x%x at 0x%x + %d", op, rkey, raddr, length);
        }
        int index = rkey >>> 8;
        if (index >= table.mrCapacity()) {
            return where + ": not a key " + peerName + " issued";
        }
        table.enter(index);
        try {
            SharedTable.MrEntry e = table.readMr(index);
            if (e == null || e.key() != rkey) {
                return where + ": no memory region with this key is registered at " + peerName + " (never registered, or deregistered)";
            }
            if (e.pd() != pd) {
                return where + ": the region belongs to protection domain " + e.pd() + " of " + peerName
                        + ", not to the queue pair's protection domain " + pd;
            }
            if ((e.access() & need.bit) == 0) {
                return where + ": the region was registered without " + need + " (access " + Access.fromBits(e.access()) + ")";
            }
            if (e.length() < 0 || raddr - e.address() < 0 || length > e.length() || raddr - e.address() > e.length() - length) {
                return where + String.format(": outside the memory region [0x%x, 0x%x) of %s", e.address(), e.address() + e.length(), peerName);
            }
            MemorySegment file = mapping(e.fileIndex(), e.fileGeneration());
            if (file == null) {
                return where + ": the file behind the region at " + peerName + " cannot be mapped";
            }
            long off = e.fileOffset() + (raddr - e.address());
            if (e.fileOffset() < 0 || off < 0 || off > file.byteSize() - length) {
                return where + ": the region's file offset lies outside the file " + peerName + " published";
            }
            long pos = off;
            for (MemorySegment s : local) {
                if (need == Access.REMOTE_WRITE) {
                    MemorySegment.copy(s, 0, file, pos, s.byteSize());
                } else {
                    MemorySegment.copy(file, pos, s, 0, s.byteSize());
                }
                pos += s.byteSize();
            }
            return null;
        } catch (IllegalStateException | InternalError e) {
            // a mapping closed under us, or a file truncated behind a mapping (SIGBUS): fail the request
            return where + ": " + e.getMessage();
        } finally {
            table.leave(index);
        }
    }

    private MemorySegment mapping(int fileIndex, int generation) {
        Mapped m = files.get(fileIndex);
        if (m != null && m.generation == generation) {
            return m.segment;
        }
        SharedTable.FileEntry f = table.readFile(fileIndex);
        if (f == null || f.generation() != generation) {
            return null;
        }
        try {
            if (!Files.isRegularFile(f.path()) || !Files.getOwner(f.path()).equals(owner)) {
                return null;
            }
            try (FileChannel ch = FileChannel.open(f.path(), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                long size = ch.size();
                if (size <= 0) {
                    return null;
                }
                MemorySegment seg = ch.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
                files.put(fileIndex, new Mapped(generation, seg));
                return seg;
            }
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    @Override
    public void close() {
        files.clear();
        try {
            arena.close();
        } catch (IllegalStateException alreadyClosed) {
            // closed by a racing teardown
        }
    }
}
