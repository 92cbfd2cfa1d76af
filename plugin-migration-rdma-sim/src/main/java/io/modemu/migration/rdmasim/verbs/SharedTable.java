package io.modemu.migration.rdmasim.verbs;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The table a device publishes in a shared file so that its peers' adapters can check their one-sided
 * requests the way the responder's adapter would: the state of each queue pair, the files that back
 * remotely accessible memory, and every memory region with its key, protection domain, access rights
 * and bounds.
 *
 * <p>Layout (native byte order; both ends run on one host): a 256-byte header, then the queue-pair
 * table (16 bytes an entry), the file table (512 bytes an entry) and the memory-region table (64 bytes
 * an entry). The owner writes an entry's fields and then publishes it with a volatile write of its
 * state; a reader reads the state with a volatile read first.
 *
 * <p>A remote access to a region brackets itself with {@link #enter}/{@link #leave} on the entry's
 * in-use counter; deregistration marks the entry invalidating and waits for the counter to drain
 * ({@link #awaitIdle}), so that no remote write lands in a region after its deregistration returned.
 * Both sides use sequentially consistent accesses, so either the writer sees the invalidation or the
 * owner sees the writer.
 *
 * <p>A peer's table is untrusted input: every index read from it is bounds-checked by the reader.
 */
final class SharedTable {
    static final long MAGIC = 0x314D534452444D4DL; // "MMDRDSM1" little-endian
    static final int VERSION = 1;
    static final int HEADER = 256;
    static final int QP_ENTRY = 16;
    static final int FILE_ENTRY = 512;
    static final int MAX_PATH = FILE_ENTRY - 16;
    static final int MR_ENTRY = 64;

    static final int MR_FREE = 0;
    static final int MR_VALID = 1;
    static final int MR_INVALIDATING = 2;

    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;

    private final MemorySegment seg;
    private final Path file;
    private final int qpCapacity;
    private final int fileCapacity;
    private final int mrCapacity;
    private final long qpBase;
    private final long fileBase;
    private final long mrBase;

    private SharedTable(Path file, MemorySegment seg, int qpCapacity, int fileCapacity, int mrCapacity) {
        this.file = file;
        this.seg = seg;
        this.qpCapacity = qpCapacity;
        this.fileCapacity = fileCapacity;
        this.mrCapacity = mrCapacity;
        this.qpBase = HEADER;
        this.fileBase = align(qpBase + (long) qpCapacity * QP_ENTRY);
        this.mrBase = align(fileBase + (long) fileCapacity * FILE_ENTRY);
    }

    private static long align(long v) {
        return (v + 63) & ~63L;
    }

    static long sizeFor(int qps, int files, int mrs) {
        long fileBase = align(HEADER + (long) qps * QP_ENTRY);
        long mrBase = align(fileBase + (long) files * FILE_ENTRY);
        return mrBase + (long) mrs * MR_ENTRY;
    }

    /** Creates the owner's table in a new file. */
    static SharedTable create(Path file, long pid, long deviceId, int qps, int files, int mrs, Arena arena) throws IOException {
        long size = sizeFor(qps, files, mrs);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.truncate(size);
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
            seg.set(ValueLayout.JAVA_INT, 8, VERSION);
            seg.set(ValueLayout.JAVA_INT, 12, HEADER);
            seg.set(LONG, 16, pid);
            seg.set(LONG, 24, deviceId);
            seg.set(ValueLayout.JAVA_INT, 32, qps);
            seg.set(ValueLayout.JAVA_INT, 36, files);
            seg.set(ValueLayout.JAVA_INT, 40, mrs);
            VarHandle.fullFence();
            seg.set(LONG, 0, MAGIC);
            return new SharedTable(file, seg, qps, files, mrs);
        }
    }

    /**
     * Maps a peer's table, checking its header against the file.
     *
     * @throws IOException naming the file when it is not a table this build understands
     */
    static SharedTable open(Path file, long expectedDeviceId, Arena arena) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long size = ch.size();
            if (size < HEADER) {
                throw new IOException("rdma-sim: peer table " + file + " is " + size + " bytes, shorter than its header");
            }
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
            long magic = seg.get(LONG, 0);
            int version = seg.get(ValueLayout.JAVA_INT, 8);
            if (magic != MAGIC || version != VERSION) {
                throw new IOException(String.format("rdma-sim: peer table %s has magic 0x%x version %d, expected 0x%x version %d",
                        file, magic, version, MAGIC, VERSION));
            }
            long deviceId = seg.get(LONG, 24);
            if (deviceId != expectedDeviceId) {
                throw new IOException(String.format("rdma-sim: peer table %s belongs to device 0x%x, the peer announced 0x%x", file, deviceId, expectedDeviceId));
            }
            int qps = seg.get(ValueLayout.JAVA_INT, 32);
            int files = seg.get(ValueLayout.JAVA_INT, 36);
            int mrs = seg.get(ValueLayout.JAVA_INT, 40);
            if (qps < 1 || qps > 65535 || files < 1 || files > 4096 || mrs < 1 || mrs > (1 << 23) || sizeFor(qps, files, mrs) > size) {
                throw new IOException("rdma-sim: peer table " + file + " declares " + qps + " queue pairs, " + files + " files, " + mrs
                        + " memory regions, which do not fit its " + size + " bytes");
            }
            return new SharedTable(file, seg, qps, files, mrs);
        }
    }

    Path file() {
        return file;
    }

    long pid() {
        return seg.get(LONG, 16);
    }

    int qpCapacity() {
        return qpCapacity;
    }

    int fileCapacity() {
        return fileCapacity;
    }

    int mrCapacity() {
        return mrCapacity;
    }

    // ---- queue pairs ----

    private long qp(int slot) {
        return qpBase + (long) slot * QP_ENTRY;
    }

    /** Publishes a queue pair's state: 0 is free, otherwise {@link QpState#ordinal()} + 1. */
    void publishQp(int slot, QpState state, int pd, int generation) {
        long o = qp(slot);
        seg.set(ValueLayout.JAVA_INT, o + 4, pd);
        seg.set(ValueLayout.JAVA_INT, o + 8, generation);
        INT.setVolatile(seg, o, state == null ? 0 : state.ordinal() + 1);
    }

    /** The state of the queue pair in {@code slot} if it still has {@code generation}, else null. */
    QpState qpState(int slot, int generation) {
        if (slot < 0 || slot >= qpCapacity) {
            return null;
        }
        long o = qp(slot);
        int s = (int) INT.getVolatile(seg, o);
        if (s < 1 || s > QpState.values().length || seg.get(ValueLayout.JAVA_INT, o + 8) != generation) {
            return null;
        }
        return QpState.values()[s - 1];
    }

    // ---- files ----

    private long fileEntry(int index) {
        return fileBase + (long) index * FILE_ENTRY;
    }

    void publishFile(int index, int generation, Path path, long size) {
        byte[] p = path.toString().getBytes(StandardCharsets.UTF_8);
        if (p.length > MAX_PATH) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT,
                    "rdma-sim: shared file path " + path + " is longer than " + MAX_PATH + " bytes");
        }
        long o = fileEntry(index);
        seg.set(ValueLayout.JAVA_INT, o + 4, p.length);
        seg.set(LONG, o + 8, size);
        MemorySegment.copy(MemorySegment.ofArray(p), 0, seg, o + 16, p.length);
        INT.setVolatile(seg, o, generation);
    }

    void clearFile(int index) {
        INT.setVolatile(seg, fileEntry(index), 0);
    }

    /** A peer's file entry, or null when the index is out of range, free, or malformed. */
    FileEntry readFile(int index) {
        if (index < 0 || index >= fileCapacity) {
            return null;
        }
        long o = fileEntry(index);
        int gen = (int) INT.getVolatile(seg, o);
        int len = seg.get(ValueLayout.JAVA_INT, o + 4);
        long size = seg.get(LONG, o + 8);
        if (gen == 0 || len <= 0 || len > MAX_PATH || size <= 0) {
            return null;
        }
        byte[] p = new byte[len];
        MemorySegment.copy(seg, o + 16, MemorySegment.ofArray(p), 0, len);
        try {
            return new FileEntry(gen, Path.of(new String(p, StandardCharsets.UTF_8)), size);
        } catch (RuntimeException e) {
            return null;
        }
    }

    record FileEntry(int generation, Path path, long size) {
    }

    // ---- memory regions ----

    private long mr(int index) {
        return mrBase + (long) index * MR_ENTRY;
    }

    void publishMr(int index, int key, int access, int pd, int fileIndex, int fileGeneration, long fileOffset, long address, long length) {
        long o = mr(index);
        seg.set(ValueLayout.JAVA_INT, o + 4, key);
        seg.set(ValueLayout.JAVA_INT, o + 8, access);
        seg.set(ValueLayout.JAVA_INT, o + 12, pd);
        seg.set(ValueLayout.JAVA_INT, o + 16, fileIndex);
        seg.set(ValueLayout.JAVA_INT, o + 20, fileGeneration);
        seg.set(LONG, o + 24, fileOffset);
        seg.set(LONG, o + 32, address);
        seg.set(LONG, o + 40, length);
        INT.setVolatile(seg, o, MR_VALID);
    }

    void markInvalidating(int index) {
        INT.setVolatile(seg, mr(index), MR_INVALIDATING);
    }

    /**
     * Waits until no peer is inside a remote access to the region. Gives up when {@code deadlineNanos}
     * passes, or when {@code nobodyLeft} says no process that could be accessing it is alive (a peer
     * killed in the middle of an access never decrements the counter).
     *
     * @return true when the region is idle, false when the wait was given up
     */
    boolean awaitIdle(int index, long deadlineNanos, java.util.function.BooleanSupplier nobodyLeft) {
        long o = mr(index) + 48;
        int spins = 0;
        while ((int) INT.getVolatile(seg, o) > 0) {
            if (System.nanoTime() - deadlineNanos > 0) {
                return false;
            }
            if (++spins < 100) {
                Thread.onSpinWait();
            } else {
                if (spins % 50 == 0 && nobodyLeft.getAsBoolean()) {
                    return false;
                }
                java.util.concurrent.locks.LockSupport.parkNanos(20_000);
            }
        }
        return true;
    }

    void freeMr(int index) {
        long o = mr(index);
        INT.setVolatile(seg, o + 48, 0);
        INT.setVolatile(seg, o, MR_FREE);
    }

    int inUse(int index) {
        return (int) INT.getVolatile(seg, mr(index) + 48);
    }

    /** Announces a remote access to region {@code index}; the caller must {@link #leave} it. */
    void enter(int index) {
        INT.getAndAdd(seg, mr(index) + 48, 1);
    }

    void leave(int index) {
        INT.getAndAdd(seg, mr(index) + 48, -1);
    }

    /** The region's entry as published, or null when it is not valid. Call between {@link #enter} and {@link #leave}. */
    MrEntry readMr(int index) {
        long o = mr(index);
        if ((int) INT.getVolatile(seg, o) != MR_VALID) {
            return null;
        }
        return new MrEntry(seg.get(ValueLayout.JAVA_INT, o + 4), seg.get(ValueLayout.JAVA_INT, o + 8), seg.get(ValueLayout.JAVA_INT, o + 12),
                seg.get(ValueLayout.JAVA_INT, o + 16), seg.get(ValueLayout.JAVA_INT, o + 20), seg.get(LONG, o + 24), seg.get(LONG, o + 32),
                seg.get(LONG, o + 40));
    }

    record MrEntry(int key, int access, int pd, int fileIndex, int fileGeneration, long fileOffset, long address, long length) {
    }
}
