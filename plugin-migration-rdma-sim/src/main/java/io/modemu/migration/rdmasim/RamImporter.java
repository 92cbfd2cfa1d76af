package io.modemu.migration.rdmasim;

import io.modemu.machine.RamBlock;
import io.modemu.migration.rdmasim.verbs.MemoryRegion;
import io.modemu.migration.rdmasim.verbs.ScatterGatherElement;
import io.modemu.migration.rdmasim.verbs.VerbsException;
import io.modemu.migration.rdmasim.verbs.WorkCompletion;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The source's half of one-sided RAM writes: registers its own guest RAM for local access, and
 * writes page runs with RDMA WRITE straight from its guest RAM into the destination's, at the
 * address and key the destination's {@link RamToken} gave (pin-all) or that it answers for each 1 MiB
 * chunk when first written (asked a few chunks ahead, so that the round trips overlap the writes).
 *
 * <p>Up to {@link ControlChannel#WRITE_DEPTH} writes are in flight; {@link #flush()} waits until
 * every one completed, i.e. landed in the destination's RAM. A write that fails (a refused key, a
 * broken connection) fails the channel with the fabric's description.
 *
 * <p>Threads: {@link #open}, {@link #write} and {@link #flush} on the migration thread; completions
 * and registration answers arrive on the poller.
 */
final class RamImporter implements ControlChannel.Handler, ControlChannel.WriteListener {
    /**
     * The most chunks asked for in one registration request. A request is a SEND, and an RDMA WRITE
     * posted after a SEND waits for its acknowledgement (reliable-connection ordering), so requests
     * are batched, and the next batch is asked for as the writes enter one (see {@link #chunkKey}).
     */
    static final int BATCH = 256;
    /**
     * One write in this many is signaled: a queue pair completes in order, so one completion stands for
     * the writes before it, and the poller and the migration thread wake once per this many writes
     * instead of once per write (selective signaling, as RDMA applications do).
     */
    static final int SIGNAL_EVERY = 16;
    /** An RDMA WRITE stays below 2 GiB; pin-all runs are split at 1 GiB. */
    private static final long MAX_WRITE = 1L << 30;

    private final ControlChannel channel;
    private final Duration timeout;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private List<RamBlock> blocks;
    private RamToken token;
    private final List<MemoryRegion> local = new ArrayList<>();
    // guarded by lock
    private int[][] keys;
    private long[][] addresses;
    private boolean[][] asked;
    private String refused;
    /** Writes posted, and writes known to have landed (every write up to the last signaled completion). */
    private long posted;
    private long completed;
    /** The last write's target, for the empty write that {@link #flush()} may post. */
    private long lastRemoteAddress;
    private int lastRkey;
    private MemoryRegion lastLocal;
    private boolean lastSignaled = true;
    private IOException failure;

    RamImporter(ControlChannel channel, Duration timeout) {
        this.channel = channel;
        this.timeout = timeout;
    }

    /**
     * Prepares the writes: checks the destination's token against the source's blocks and registers
     * the source's RAM for local access.
     */
    void open(List<RamBlock> ram, byte[] tokenBytes) throws IOException {
        RamToken t = RamToken.decode(tokenBytes);
        if (t.blocks().size() != ram.size()) {
            throw new IOException("rdma-sim: the destination exposes " + t.blocks().size() + " RAM blocks, the source has " + ram.size());
        }
        for (int i = 0; i < ram.size(); i++) {
            RamToken.Block d = t.blocks().get(i);
            RamBlock s = ram.get(i);
            if (!d.name().equals(s.name()) || d.size() != s.size()) {
                throw new IOException("rdma-sim: the destination exposes RAM block '" + d.name() + "' of " + d.size() + " bytes where the source has '"
                        + s.name() + "' of " + s.size() + " bytes");
            }
        }
        try {
            for (RamBlock b : ram) {
                local.add(channel.protectionDomain().register(b.segment()));
            }
        } catch (VerbsException e) {
            throw new IOException("rdma-sim: cannot register the source's guest RAM: " + e.getMessage(), e);
        }
        lock.lock();
        try {
            keys = new int[ram.size()][];
            addresses = new long[ram.size()][];
            asked = new boolean[ram.size()][];
            for (int i = 0; i < ram.size(); i++) {
                int n = (int) ((ram.get(i).size() + (1L << t.chunkShift()) - 1) >>> t.chunkShift());
                keys[i] = new int[n];
                addresses[i] = new long[n];
                asked[i] = new boolean[n];
            }
        } finally {
            lock.unlock();
        }
        this.blocks = List.copyOf(ram);
        this.token = t;
        channel.setWriteListener(this);
    }

    /** Writes {@code [offset, offset + length)} of block {@code blockIndex} to the same place at the destination. */
    void write(int blockIndex, long offset, long length) throws IOException {
        if (blocks == null) {
            throw new IllegalStateException("rdma-sim: RAM writes before open");
        }
        if (blockIndex < 0 || blockIndex >= blocks.size() || offset < 0 || length <= 0 || offset > blocks.get(blockIndex).size() - length) {
            throw new IllegalArgumentException("rdma-sim: write of " + length + " bytes at " + offset + " in block " + blockIndex + " is outside guest RAM");
        }
        RamToken.Block dest = token.blocks().get(blockIndex);
        MemoryRegion mr = local.get(blockIndex);
        long end = offset + length;
        long at = offset;
        while (at < end) {
            long pieceEnd;
            int rkey;
            if (token.pinAll()) {
                pieceEnd = Math.min(end, at + MAX_WRITE);
                rkey = dest.rkey();
            } else {
                int chunk = (int) (at >>> token.chunkShift());
                pieceEnd = Math.min(end, (long) (chunk + 1) << token.chunkShift());
                rkey = chunkKey(blockIndex, chunk);
            }
            postWrite(ScatterGatherElement.of(mr, at, (int) (pieceEnd - at)), mr, dest.address() + at, rkey);
            at = pieceEnd;
        }
    }

    private void postWrite(ScatterGatherElement sge, MemoryRegion mr, long remoteAddress, int rkey) throws IOException {
        long id;
        boolean signaled;
        lock.lock();
        try {
            await(() -> posted - completed < ControlChannel.WRITE_DEPTH, "a free write slot");
            id = posted++;
            signaled = posted % SIGNAL_EVERY == 0;
            lastSignaled = signaled;
            lastRemoteAddress = remoteAddress;
            lastRkey = rkey;
            lastLocal = mr;
        } finally {
            lock.unlock();
        }
        channel.postWrite(id & 0xffff_ffff_ffffL, sge, remoteAddress, rkey, signaled);
    }

    /**
     * The remote key of a chunk, asking the destination for it (and the chunks after it) when unknown,
     * and for the next batch as soon as the write position enters a batch. The request is a SEND queued
     * behind the writes already posted (up to {@link ControlChannel#WRITE_DEPTH} of them), so it leaves
     * only once they are placed; asked for half-way through a batch, the keys came back after the writer
     * had reached the next batch, and it waited 7-8 ms for them there in every migration measured.
     */
    private int chunkKey(int block, int chunk) throws IOException {
        lock.lock();
        try {
            if (!asked[block][chunk]) {
                askFrom(block, chunk);
            }
            int ahead = chunk + batchFor(asked[block].length);
            if (ahead < asked[block].length && !asked[block][ahead]) {
                int from = chunk + 1;
                while (asked[block][from]) {
                    from++;
                }
                askFrom(block, from);
            }
            if (keys[block][chunk] == 0) {
                await(() -> keys[block][chunk] != 0, "the key of chunk " + chunk + " of block '" + blocks.get(block).name() + "'");
            }
            return keys[block][chunk];
        } finally {
            lock.unlock();
        }
    }

    /**
     * Chunks a request asks for in a block of {@code chunks} chunks: a quarter of the block, at most
     * {@link #BATCH}, so that a pass over any block larger than four chunks asks again as it goes. The
     * engine's warm-up migrates a small machine (16 MiB: batches of 4), and a block that fitted in one
     * batch would never run the asking-ahead branch there: compiled without it, the first real
     * migration of a block of more than 256 chunks threw the compiled writer away when it got there (an
     * {@code unstable_if} trap in {@code chunkKey}; seen in 1 GiB migrations of JVMs whose AOT cache a
     * 256 MiB migration had trained).
     */
    static int batchFor(int chunks) {
        return Math.max(1, Math.min(BATCH, chunks / 4));
    }

    /** Lock held: asks for up to a batch of consecutive chunks not asked for yet, from {@code first}. */
    private void askFrom(int block, int first) throws IOException {
        int n = 0;
        int batch = batchFor(asked[block].length);
        while (n < batch && first + n < asked[block].length && !asked[block][first + n]) {
            asked[block][first + n] = true;
            n++;
        }
        channel.sendControl(ControlChannel.MSG_REGISTER, ByteBuffer.allocate(12).putInt(block).putInt(first).putInt(n).array());
    }

    /**
     * Waits until every write posted so far landed at the destination. When the last write was not
     * signaled, an empty signaled write follows it: its completion stands for everything before it.
     */
    void flush() throws IOException {
        boolean fence;
        lock.lock();
        try {
            fence = !lastSignaled && posted > completed;
        } finally {
            lock.unlock();
        }
        if (fence) {
            long id;
            lock.lock();
            try {
                await(() -> posted - completed < ControlChannel.WRITE_DEPTH, "a free write slot");
                id = posted++;
                lastSignaled = true;
            } finally {
                lock.unlock();
            }
            channel.postWrite(id & 0xffff_ffff_ffffL, ScatterGatherElement.of(lastLocal, 0, 0), lastRemoteAddress, lastRkey, true);
        }
        lock.lock();
        try {
            await(() -> completed == posted, "the RAM writes to land");
        } finally {
            lock.unlock();
        }
    }

    /** Lock held: waits for {@code done}, failing on a channel failure or when nothing progressed for the timeout. */
    private void await(java.util.function.BooleanSupplier done, String what) throws IOException {
        long progress = completed;
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            // a failed write fails every later call, even once nothing is outstanding any more
            if (failure != null) {
                throw new IOException(failure.getMessage(), failure);
            }
            if (refused != null) {
                throw new IOException(refused);
            }
            // the channel failed (the destination broke the protocol, or went away): no answer will come
            // (checked at each wake-up, at least every 100 ms, not only at the timeout)
            IOException broken = channel.failure();
            if (broken != null) {
                throw new IOException(broken.getMessage(), broken);
            }
            if (done.getAsBoolean()) {
                return;
            }
            if (completed != progress) {
                progress = completed;
                deadline = System.nanoTime() + timeout.toNanos();
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new SocketTimeoutException("rdma-sim: waited " + timeout.toMillis() + " ms for " + what + " from " + channel.peer());
            }
            try {
                changed.awaitNanos(Math.min(left, 100_000_000L));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("rdma-sim: interrupted while waiting for " + what);
            }
        }
    }

    /** Poller thread: a signaled RDMA WRITE completed, and with it every write posted before it; or a write failed. */
    @Override
    public void completed(WorkCompletion wc) {
        lock.lock();
        try {
            if (!wc.isSuccess()) {
                if (failure == null) {
                    failure = new IOException("rdma-sim: RAM write to " + channel.peer() + " failed: " + wc.status() + ": " + wc.detail());
                }
            } else {
                // ids are the posting order (48 bits, as posted); a completion covers every write up to it
                long through = (posted & ~0xffff_ffff_ffffL | (wc.wrId() & 0xffff_ffff_ffffL)) + 1;
                if (through > posted) {
                    through -= 1L << 48;
                }
                if (through > completed) {
                    completed = through;
                }
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Poller thread: the destination answered a chunk registration. */
    @Override
    public void onControl(int type, ByteBuffer body) throws IOException {
        if (type != ControlChannel.MSG_REGISTERED || body.remaining() < 14) {
            throw new IOException("rdma-sim: " + channel.peer() + " sent transport message type " + type + ", expected a chunk registration answer");
        }
        int block = body.getInt();
        int first = body.getInt();
        int count = body.getInt();
        int errorLength = body.getShort() & 0xffff;
        if (errorLength > body.remaining()) {
            throw new IOException("rdma-sim: " + channel.peer() + " sent a malformed chunk registration answer");
        }
        byte[] e = new byte[errorLength];
        body.get(e);
        lock.lock();
        try {
            if (keys == null || block < 0 || block >= keys.length || count < 1 || count > BATCH || first < 0 || first > keys[block].length - count) {
                throw new IOException("rdma-sim: " + channel.peer() + " answered a registration of block " + block + " chunks " + first + "+" + count
                        + " nobody asked for");
            }
            if (errorLength > 0) {
                refused = "rdma-sim: " + channel.peer() + " refused to register chunks " + first + ".." + (first + count - 1) + " of block '"
                        + blocks.get(block).name() + "': " + new String(e, StandardCharsets.UTF_8);
            } else {
                if (body.remaining() != count * 12) {
                    throw new IOException("rdma-sim: " + channel.peer() + " sent a chunk registration answer of the wrong length");
                }
                for (int c = first; c < first + count; c++) {
                    int rkey = body.getInt();
                    long address = body.getLong();
                    long expected = token.blocks().get(block).address() + ((long) c << token.chunkShift());
                    if (!asked[block][c] || rkey == 0 || address != expected) {
                        throw new IOException(String.format("rdma-sim: %s registered chunk %d of block '%s' with key 0x%x at 0x%x, expected 0x%x%s",
                                channel.peer(), c, blocks.get(block).name(), rkey, address, expected, asked[block][c] ? "" : " (not asked for)"));
                    }
                    keys[block][c] = rkey;
                }
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Deregisters the source's RAM. */
    void close() {
        for (MemoryRegion mr : local) {
            if (mr.isRegistered()) {
                mr.deregister();
            }
        }
        local.clear();
    }
}
