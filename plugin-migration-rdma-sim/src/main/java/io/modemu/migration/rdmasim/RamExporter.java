package io.modemu.migration.rdmasim;

import io.modemu.machine.RamBlock;
import io.modemu.migration.rdmasim.verbs.Access;
import io.modemu.migration.rdmasim.verbs.MemoryRegion;
import io.modemu.migration.rdmasim.verbs.SharedMemory;
import io.modemu.migration.rdmasim.verbs.VerbsException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The destination's half of one-sided RAM writes: registers guest RAM so that the source's RDMA
 * WRITEs land in it directly — all of it up front with pin-all, otherwise 1 MiB chunks when the
 * source first asks for them ({@link ControlChannel#MSG_REGISTER}, answered from the poller thread) —
 * and deregisters everything on {@link #withdraw()}, after which no write lands any more.
 *
 * <p>Guest RAM must be a shared mapping of a file ({@link RamBlock#backingFile()}): the source's
 * adapter, being the source process, reaches it by mapping the same file.
 *
 * <p>Thread-safe: {@link #expose} and {@link #withdraw} run on the migration thread, registrations
 * on the poller.
 */
final class RamExporter implements ControlChannel.Handler {
    private static final Logger log = LoggerFactory.getLogger(RamExporter.class);
    static final int CHUNK_SHIFT = 20;

    private final ControlChannel channel;
    private final boolean pinAll;
    private List<RamBlock> blocks;
    private final List<SharedMemory> attached = new ArrayList<>();
    private final List<MemoryRegion> regions = new ArrayList<>();
    private MemoryRegion[][] chunks;
    private boolean withdrawn;
    private int registrations;

    RamExporter(ControlChannel channel, boolean pinAll) {
        this.channel = channel;
        this.pinAll = pinAll;
    }

    /**
     * Attaches guest RAM to the fabric (and registers all of it with pin-all).
     *
     * @return the token for the source's {@link RamImporter#open}
     * @throws IOException naming the block when guest RAM is not backed by a file
     */
    synchronized byte[] expose(List<RamBlock> ram) throws IOException {
        if (blocks != null) {
            throw new IOException("rdma-sim: guest RAM is already exposed on this connection");
        }
        List<RamToken.Block> described = new ArrayList<>();
        try {
            for (RamBlock b : ram) {
                Path file = b.backingFile().orElseThrow(() -> new IOException("rdma-sim: guest RAM block '" + b.name()
                        + "' is not backed by a file, so the source cannot write into it one-sided; start the destination with its RAM in a "
                        + "shared file (-object memory-backend-file,id=ram0,size=...,mem-path=/dev/shm/...,share=on -machine memory-backend=ram0)"));
                attached.add(channel.device().attachShared(file, b.segment()));
                int rkey = 0;
                if (pinAll) {
                    MemoryRegion mr = channel.protectionDomain().register(b.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
                    regions.add(mr);
                    rkey = mr.rkey();
                }
                described.add(new RamToken.Block(b.name(), b.size(), b.segment().address(), rkey));
            }
        } catch (VerbsException e) {
            release();
            throw new IOException("rdma-sim: cannot register guest RAM: " + e.getMessage(), e);
        } catch (IOException | RuntimeException e) {
            release();
            throw e;
        }
        blocks = List.copyOf(ram);
        chunks = new MemoryRegion[blocks.size()][];
        for (int i = 0; i < blocks.size(); i++) {
            chunks[i] = new MemoryRegion[(int) ((blocks.get(i).size() + (1L << CHUNK_SHIFT) - 1) >>> CHUNK_SHIFT)];
        }
        log.info("rdma-sim: exposed {} bytes of guest RAM to {} ({})", ram.stream().mapToLong(RamBlock::size).sum(), channel.peer(),
                pinAll ? "pinned all" : "1 MiB chunks on demand");
        return new RamToken(pinAll, CHUNK_SHIFT, described).encode();
    }

    /** Poller thread: the source asks for the keys of {@code count} chunks from {@code first}. */
    @Override
    public void onControl(int type, ByteBuffer body) throws IOException {
        if (type != ControlChannel.MSG_REGISTER || body.remaining() != 12) {
            throw new IOException("rdma-sim: " + channel.peer() + " sent transport message type " + type + " of " + body.remaining()
                    + " bytes, expected a chunk registration request");
        }
        int block = body.getInt();
        int first = body.getInt();
        int count = body.getInt();
        String error = "";
        ByteBuffer keys = ByteBuffer.allocate(Math.max(0, Math.min(count, RamImporter.BATCH)) * 12);
        synchronized (this) {
            if (blocks == null || withdrawn) {
                error = "guest RAM is not exposed";
            } else if (block < 0 || block >= blocks.size() || count < 1 || count > RamImporter.BATCH || first < 0 || first > chunks[block].length - count) {
                error = "block " + block + " chunks " + first + "+" + count + " do not exist";
            } else if (pinAll) {
                error = "guest RAM is pinned all: no chunk registration";
            } else {
                RamBlock b = blocks.get(block);
                // each run of chunks not registered yet becomes one memory region: the same bytes are exposed as
                // with a region per chunk, but withdrawing (inside the downtime) deregisters a few regions, not hundreds
                for (int chunk = first; chunk < first + count && error.isEmpty(); ) {
                    if (chunks[block][chunk] != null) {
                        chunk++;
                        continue;
                    }
                    int end = chunk + 1;
                    while (end < first + count && chunks[block][end] == null) {
                        end++;
                    }
                    long off = (long) chunk << CHUNK_SHIFT;
                    long len = Math.min((long) end << CHUNK_SHIFT, b.size()) - off;
                    try {
                        MemoryRegion mr = channel.protectionDomain().register(b.segment().asSlice(off, len), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
                        regions.add(mr);
                        for (int c = chunk; c < end; c++) {
                            chunks[block][c] = mr;
                        }
                        registrations += end - chunk;
                    } catch (VerbsException e) {
                        error = e.getMessage();
                    }
                    chunk = end;
                }
                if (error.isEmpty()) {
                    long base = b.segment().address();
                    for (int chunk = first; chunk < first + count; chunk++) {
                        keys.putInt(chunks[block][chunk].rkey()).putLong(base + ((long) chunk << CHUNK_SHIFT));
                    }
                }
            }
        }
        byte[] e = error.getBytes(StandardCharsets.UTF_8);
        ByteBuffer reply = ByteBuffer.allocate(14 + e.length + (error.isEmpty() ? keys.capacity() : 0));
        reply.putInt(block).putInt(first).putInt(count).putShort((short) e.length).put(e);
        if (error.isEmpty()) {
            reply.put(keys.flip());
        }
        channel.sendControl(ControlChannel.MSG_REGISTERED, reply.array());
    }

    /** Chunks registered on demand so far (a run of chunks asked for together shares one region). */
    synchronized int registrations() {
        return registrations;
    }

    /** The number of memory regions registered over guest RAM now, and the bytes they expose. */
    synchronized long[] regionsAndBytes() {
        long bytes = 0;
        for (MemoryRegion mr : regions) {
            bytes += mr.length();
        }
        return new long[] {regions.size(), bytes};
    }

    /** Deregisters guest RAM: once this returns, no remote write lands in it. Idempotent. */
    synchronized void withdraw() {
        if (withdrawn) {
            return;
        }
        withdrawn = true;
        long t0 = System.nanoTime();
        int n = regions.size();
        release();
        log.debug("rdma-sim: withdrew guest RAM from {}: {} regions deregistered in {} us", channel.peer(), n, (System.nanoTime() - t0) / 1000);
    }

    private void release() {
        // a plain loop: this runs inside the migration's downtime, where a first lambda costs milliseconds
        List<MemoryRegion> live = new ArrayList<>(regions.size());
        for (MemoryRegion mr : regions) {
            if (mr.isRegistered()) {
                live.add(mr);
            }
        }
        if (!live.isEmpty()) {
            channel.protectionDomain().deregister(live);
        }
        regions.clear();
        for (SharedMemory sm : attached) {
            sm.close();
        }
        attached.clear();
    }
}
