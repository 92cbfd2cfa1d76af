package io.modemu.virtio.blk;

import io.modemu.aio.AioContext;
import io.modemu.block.BlockBackend;
import io.modemu.block.BlockDevOps;
import io.modemu.block.Errno;
import io.modemu.device.Device;
import io.modemu.device.MmioDevice;
import io.modemu.machine.GuestMemory;
import io.modemu.machine.Machine;
import io.modemu.machine.MmioBus;
import io.modemu.machine.RunState;
import io.modemu.machine.VmStateHandler;
import io.modemu.migration.Migratable;
import io.modemu.migration.StateReader;
import io.modemu.migration.StateWriter;
import io.modemu.virtio.QueueLayout;
import io.modemu.virtio.Virtio;
import io.modemu.virtio.VirtioDevice;
import io.modemu.virtio.VirtioMmioTransport;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A virtio-blk device (VIRTIO 1.2, 5.2) on a virtio-mmio slot, serving a {@link BlockBackend}.
 *
 * <h2>Threads</h2>
 * <ul>
 * <li>Registers: vCPU threads, through the {@link VirtioMmioTransport}. QueueNotify only signals the
 * queue's {@link io.modemu.aio.EventNotifier} (the ioeventfd); nothing else runs on the vCPU.</li>
 * <li>Queues: each on its home context — the IOThread(s) of {@code iothread=} /
 * {@code iothread-vq-mapping}, or the main loop. Popping, parsing, submitting, completing and raising
 * the interrupt happen there; the main loop is never involved.</li>
 * <li>VM stop and start, backend moves, state save and load: the main loop.</li>
 * </ul>
 *
 * <h2>Stop and start</h2>
 * Stop (a VM change-state handler, whichever thread asked for the stop): stop taking requests (a
 * barrier task on every queue context after which no queue pops), wait until every request in
 * flight has completed into the used ring, then move the backend back to the main loop (a drained,
 * transactional {@link BlockBackend#setAioContext}). Start: move the backend to its IOThread, retry
 * the requests parked by {@code werror/rerror=stop}, and process what the driver queued meanwhile.
 * None of it blocks a loop: each step is a stage chained on the previous one.
 *
 * <h2>State</h2>
 * Version 1: the configuration identity (capacity, block size, queues), the transport's registers,
 * each queue's indices, and the parked requests as parsed (queue, head, operation, sector, buffers),
 * every value checked on load.
 */
public final class VirtioBlkDevice implements Device, MmioDevice, VirtioDevice, Migratable, BlockDevOps, VmStateHandler {
    private static final Logger log = LoggerFactory.getLogger(VirtioBlkDevice.class);
    public static final String TYPE = "virtio-blk-device";
    static final int STATE_VERSION = 1;
    /** Stop order: devices on a bus stop before the bus (handlers stop in descending priority). */
    static final int VM_STATE_PRIORITY = 1;
    /** QEMU's largest discard / write-zeroes request in sectors (BDRV_REQUEST_MAX_SECTORS). */
    static final long MAX_DISCARD_SECTORS = (Integer.MAX_VALUE & ~511L) >> VirtioBlk.SECTOR_SHIFT;
    /** Advertised size_max: the largest segment a driver should send. */
    static final int SIZE_MAX = 1 << 20;

    private final Machine machine;
    private final String id;
    private final BlockBackend backend;
    private final GuestMemory memory;
    private final AioContext mainLoop;
    /** Where the backend lives while the VM runs: the first IOThread, or null for the main loop. */
    private final AioContext dataplaneHome;
    private final List<AioContext> contexts;
    private final BlkQueue[] queues;
    private final int queueSize;
    private final ErrorPolicy werror;
    private final ErrorPolicy rerror;
    private final byte[] serial;
    private final int logicalBlockSize;
    private final long sectorMask;
    private final long capacitySectors;
    private final boolean readOnly;
    private final long features;
    private final byte[] config;
    private final InFlight inFlight = new InFlight();
    private VirtioMmioTransport transport;
    private MmioBus.Slot slot;

    private volatile boolean running;
    private volatile boolean quiesced;
    private volatile long negotiated;
    /** Guarded by the transport's lock: whether a queue may have been served since the last reset. */
    private boolean started;

    /** Device settings, as parsed from {@code -device}. */
    record Settings(int numQueues, int queueSize, List<AioContext> queueContexts, ErrorPolicy werror, ErrorPolicy rerror,
                    String serial, int logicalBlockSize) {
    }

    VirtioBlkDevice(Machine machine, String id, BlockBackend backend, Settings s) {
        this.machine = machine;
        this.id = id;
        this.backend = backend;
        this.memory = machine.memory();
        this.mainLoop = machine.mainLoop();
        this.queueSize = s.queueSize();
        this.werror = s.werror();
        this.rerror = s.rerror();
        this.serial = s.serial() == null ? new byte[0] : s.serial().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        this.logicalBlockSize = s.logicalBlockSize();
        this.sectorMask = (logicalBlockSize >> VirtioBlk.SECTOR_SHIFT) - 1;
        this.capacitySectors = backend.size() >> VirtioBlk.SECTOR_SHIFT;
        this.readOnly = backend.isReadOnly();
        this.queues = new BlkQueue[s.numQueues()];
        Set<AioContext> distinct = new LinkedHashSet<>();
        for (int q = 0; q < queues.length; q++) {
            AioContext ctx = s.queueContexts() == null ? mainLoop : s.queueContexts().get(q);
            queues[q] = new BlkQueue(this, q, ctx, queueSize);
            distinct.add(ctx);
        }
        this.contexts = List.copyOf(distinct);
        this.dataplaneHome = s.queueContexts() == null ? null : s.queueContexts().getFirst();
        this.features = offeredFeatures();
        this.config = buildConfig();
    }

    /** Realizes the device on the machine. Main loop; the caller undoes the machine registrations if this throws. */
    void realize() {
        mainLoop.assertInThread();
        backend.attach(id, this);
        try {
            slot = machine.attachMmio(id, this);
            transport = new VirtioMmioTransport("virtio-blk '" + id + "'", memory, slot.irq(), this);
            machine.addVmStateHandler(stateName(), VM_STATE_PRIORITY, this);
            machine.registerState(this);
        } catch (RuntimeException e) {
            backend.detach();
            throw e;
        }
        if (machine.isRunning()) {
            start();
        }
        log.debug("virtio-blk '{}': drive '{}', slot {} (irq {}), {} queue(s) of {} on {}", id, backend.id(), slot.index(),
                slot.irq().number(), queues.length, queueSize, contexts.stream().map(AioContext::name).toList());
    }

    private long offeredFeatures() {
        long f = 1L << Virtio.F_VERSION_1 | 1L << Virtio.F_INDIRECT_DESC | 1L << Virtio.F_EVENT_IDX
                | 1L << VirtioBlk.F_SIZE_MAX | 1L << VirtioBlk.F_SEG_MAX | 1L << VirtioBlk.F_BLK_SIZE | 1L << VirtioBlk.F_FLUSH
                | 1L << VirtioBlk.F_DISCARD | 1L << VirtioBlk.F_WRITE_ZEROES;
        if (readOnly) {
            f |= 1L << VirtioBlk.F_RO;
        }
        if (queues.length > 1) {
            f |= 1L << VirtioBlk.F_MQ;
        }
        return f;
    }

    private byte[] buildConfig() {
        byte[] c = new byte[VirtioBlk.CONFIG_SIZE];
        putLe(c, VirtioBlk.CFG_CAPACITY, 8, capacitySectors);
        putLe(c, VirtioBlk.CFG_SIZE_MAX, 4, SIZE_MAX);
        putLe(c, VirtioBlk.CFG_SEG_MAX, 4, queueSize - 2);
        putLe(c, VirtioBlk.CFG_BLK_SIZE, 4, logicalBlockSize);
        putLe(c, VirtioBlk.CFG_NUM_QUEUES, 2, queues.length);
        putLe(c, VirtioBlk.CFG_MAX_DISCARD_SECTORS, 4, MAX_DISCARD_SECTORS);
        putLe(c, VirtioBlk.CFG_MAX_DISCARD_SEG, 4, 1);
        putLe(c, VirtioBlk.CFG_DISCARD_SECTOR_ALIGNMENT, 4, logicalBlockSize >> VirtioBlk.SECTOR_SHIFT);
        putLe(c, VirtioBlk.CFG_MAX_WRITE_ZEROES_SECTORS, 4, MAX_DISCARD_SECTORS);
        putLe(c, VirtioBlk.CFG_MAX_WRITE_ZEROES_SEG, 4, 1);
        c[VirtioBlk.CFG_WRITE_ZEROES_MAY_UNMAP] = 1;
        return c;
    }

    private static void putLe(byte[] b, int off, int n, long v) {
        for (int i = 0; i < n; i++) {
            b[off + i] = (byte) (v >>> (8 * i));
        }
    }

    // ---- accessors ----

    @Override
    public String id() {
        return id;
    }

    @Override
    public String typeName() {
        return TYPE;
    }

    public BlockBackend backend() {
        return backend;
    }

    GuestMemory memory() {
        return memory;
    }

    public VirtioMmioTransport transport() {
        return transport;
    }

    /** The virtio-mmio slot the device sits in. */
    public MmioBus.Slot slot() {
        return slot;
    }

    /**
     * Requests popped and not yet visible in the used ring (nor parked). Any thread. While a queue
     * takes a batch of chains, the rest of that batch is counted too (its context reserves them at
     * once and gives back what it did not take before the pass goes on), so from another thread the
     * figure may read high for that moment, never low.
     */
    public int inFlight() {
        return inFlight.get();
    }

    InFlight tracker() {
        return inFlight;
    }

    /** Requests parked by an error policy. Main loop, VM stopped (or a snapshot while running). */
    public int parkedRequests() {
        int n = 0;
        for (BlkQueue q : queues) {
            n += q.parked().size();
        }
        return n;
    }

    /** The contexts the queues run on, in queue order. */
    public List<AioContext> queueContexts() {
        List<AioContext> l = new ArrayList<>();
        for (BlkQueue q : queues) {
            l.add(q.context);
        }
        return l;
    }

    /** Whether the dataplane runs (the VM runs and the device took its start). Any thread. */
    public boolean isDataplaneRunning() {
        return running;
    }

    boolean canServe() {
        return running && !quiesced && !transport.isBroken();
    }

    boolean modern() {
        return Virtio.has(negotiated, Virtio.F_VERSION_1);
    }

    boolean negotiated(int bit) {
        return Virtio.has(negotiated, bit);
    }

    boolean isReadOnly() {
        return readOnly;
    }

    long maxDiscardSectors() {
        return MAX_DISCARD_SECTORS;
    }

    byte[] serialBytes() {
        return serial;
    }

    ErrorPolicy policyFor(boolean read) {
        return read ? rerror : werror;
    }

    /** Whether {@code bytes} at {@code sector} is a whole number of logical blocks inside the disk. */
    boolean rangeOk(long sector, long bytes) {
        // logicalBlockSize is a power of two (checked when the device is created): a mask, not a division
        if (bytes < 0 || (bytes & (logicalBlockSize - 1)) != 0 || (sector & sectorMask) != 0) {
            return false;
        }
        long sectors = bytes >>> VirtioBlk.SECTOR_SHIFT;
        return Long.compareUnsigned(sector, capacitySectors) <= 0 && sectors <= capacitySectors - sector;
    }

    // ---- MMIO: the transport's registers ----

    @Override
    public long mmioRead(long offset, int size) {
        return transport.mmioRead(offset, size);
    }

    @Override
    public void mmioWrite(long offset, int size, long value) {
        transport.mmioWrite(offset, size, value);
    }

    // ---- VirtioDevice: called by the transport ----

    @Override
    public int deviceId() {
        return VirtioBlk.DEVICE_ID;
    }

    @Override
    public long deviceFeatures() {
        return features;
    }

    @Override
    public int numQueues() {
        return queues.length;
    }

    @Override
    public int queueMaxSize() {
        return queueSize;
    }

    @Override
    public int configSize() {
        return config.length;
    }

    @Override
    public int readConfig(int offset) {
        return config[offset] & 0xff;
    }

    @Override
    public void start(long negotiatedFeatures, QueueLayout[] layouts) {
        negotiated = negotiatedFeatures;
        started = true;
        boolean eventIdx = BlkQueue.eventIdx(negotiatedFeatures);
        for (int q = 0; q < queues.length; q++) {
            QueueLayout l = layouts[q];
            if (l != null) {
                BlkQueue bq = queues[q];
                bq.context.execute(() -> bq.activate(l, eventIdx));
            }
        }
    }

    @Override
    public void activateQueue(int index, QueueLayout layout) {
        started = true;
        BlkQueue bq = queues[index];
        boolean eventIdx = BlkQueue.eventIdx(negotiated);
        bq.context.execute(layout == null ? bq::deactivate : () -> bq.activate(layout, eventIdx));
    }

    @Override
    public void notifyQueue(int index) {
        queues[index].notifier.signal();
    }

    @Override
    public void reset(Runnable done) {
        negotiated = 0;
        if (!started) {
            done.run();
            return;
        }
        started = false;
        List<CompletableFuture<Void>> barriers = new ArrayList<>();
        for (AioContext ctx : contexts) {
            barriers.add(ctx.<Void>submit(() -> {
                for (BlkQueue q : queues) {
                    if (q.context == ctx) {
                        q.deactivate();
                    }
                }
                return null;
            }));
        }
        CompletableFuture.allOf(barriers.toArray(CompletableFuture[]::new))
                .thenCompose(v -> inFlight.whenIdle())
                .whenComplete((v, t) -> {
                    if (t != null) {
                        log.error("virtio-blk '{}': reset failed", id, t);
                    }
                    done.run();
                });
    }

    /** The guest broke the protocol: DEVICE_NEEDS_RESET. Any thread. */
    void guestError(String message) {
        transport.deviceError(message);
    }

    /** A request failed on the host; {@code action} is what the error policy chose. Queue context. */
    void ioError(BlkRequest r, ErrorPolicy action, int error) {
        try {
            reportIoError(r, action, error);
        } catch (RuntimeException e) {
            // the request is answered (or parked) whatever happens to the report
            log.error("virtio-blk '{}': reporting a failed {} failed", id, r.operation(), e);
        }
    }

    private void reportIoError(BlkRequest r, ErrorPolicy action, int error) {
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("device", backend.id());
        data.put("node-name", backend.id());
        data.put("qom-path", "/machine/peripheral/" + id);
        data.put("operation", r.isRead() ? "read" : "write");
        data.put("action", action.qapiName());
        data.put("nospace", Math.abs(error) == Errno.ENOSPC);
        data.put("reason", BlkQueue.reason(error));
        machine.emit("BLOCK_IO_ERROR", data);
        if (action == ErrorPolicy.STOP) {
            log.warn("virtio-blk '{}': {} at sector {} failed ({}); the VM stops, the request is retried when it resumes", id,
                    r.operation(), r.sector, Errno.name(error));
            machine.vmStop(RunState.IO_ERROR).whenComplete((v, t) -> {
                if (t != null) {
                    log.debug("virtio-blk '{}': stop on I/O error not applied: {}", id, t.getMessage());
                }
            });
        } else {
            log.debug("virtio-blk '{}': {} at sector {} failed ({}), {}", id, r.operation(), r.sector, Errno.name(error), action.qapiName());
        }
    }

    // ---- VM change state: main loop ----

    /**
     * Stops the dataplane: no queue takes a request after this, in-flight requests complete, the
     * backend returns to the main loop. Main loop; whichever thread asked for the stop.
     */
    @Override
    public CompletionStage<Void> stop(RunState newState) {
        mainLoop.assertInThread();
        running = false;
        List<CompletableFuture<Void>> barriers = new ArrayList<>();
        for (AioContext ctx : contexts) {
            // runs after any pass in progress; later passes see running == false
            barriers.add(ctx.<Void>submit(() -> null));
        }
        return CompletableFuture.allOf(barriers.toArray(CompletableFuture[]::new))
                .thenCompose(v -> inFlight.whenIdle())
                .thenComposeAsync(v -> dataplaneHome == null ? CompletableFuture.<Void>completedFuture(null)
                        : backend.setAioContext(mainLoop), mainLoop)
                .thenRun(() -> log.debug("virtio-blk '{}': dataplane stopped for {}", id, newState));
    }

    /** Starts the dataplane: backend to its IOThread, parked requests retried, queues processed. Main loop. */
    @Override
    public CompletionStage<Void> start() {
        mainLoop.assertInThread();
        CompletionStage<Void> moved = dataplaneHome == null ? CompletableFuture.completedFuture(null) : backend.setAioContext(dataplaneHome);
        return moved.thenComposeAsync(v -> {
            running = true;
            List<CompletableFuture<Void>> tasks = new ArrayList<>();
            for (AioContext ctx : contexts) {
                tasks.add(ctx.<Void>submit(() -> {
                    for (BlkQueue q : queues) {
                        if (q.context == ctx) {
                            q.resume();
                        }
                    }
                    return null;
                }));
            }
            return CompletableFuture.allOf(tasks.toArray(CompletableFuture[]::new));
        }, mainLoop);
    }

    // ---- BlockDevOps: main loop ----

    @Override
    public void drainedBegin() {
        quiesced = true;
    }

    @Override
    public void drainedEnd() {
        quiesced = false;
        for (BlkQueue q : queues) {
            q.notifier.signal();
        }
    }

    @Override
    public void prepareAioContextChange(AioContext target) {
        if (running) {
            throw new IllegalStateException("drive '" + backend.id() + "' serves virtio-blk '" + id + "' whose dataplane runs; stop the VM first");
        }
    }

    @Override
    public void unrealize() {
        running = false;
        backend.detach();
    }

    // ---- migration state: main loop, VM stopped, device drained ----

    @Override
    public String stateName() {
        return "virtio-blk:" + id;
    }

    @Override
    public int stateVersion() {
        return STATE_VERSION;
    }

    @Override
    public void saveState(StateWriter out) {
        mainLoop.assertInThread();
        if (inFlight.get() != 0) {
            throw new IllegalStateException("virtio-blk '" + id + "': " + inFlight.get() + " requests in flight; save the state with the VM stopped");
        }
        out.u64(capacitySectors).u32(logicalBlockSize).u32(queueSize).u16(queues.length);
        transport.saveState(out);
        for (BlkQueue q : queues) {
            boolean active = q.vq.isActive();
            out.bool(active);
            if (active) {
                out.u16(q.vq.lastAvailIdx()).u16(q.vq.usedIdx()).u16(q.vq.signalledUsed()).bool(q.vq.signalledUsedValid());
            }
        }
        out.u32(parkedRequests());
        for (BlkQueue q : queues) {
            for (BlkRequest r : q.parked()) {
                out.u16(q.index).u16(r.head).u8(r.kind).u64(r.sector).u64(r.bytes).u64(r.statusAddr).u32(Integer.toUnsignedLong(r.inLen));
                out.u32(r.segCount);
                for (int i = 0; i < r.segCount; i++) {
                    out.u64(r.segAddr[i]).u32(Integer.toUnsignedLong(r.segLen[i]));
                }
            }
        }
    }

    private record QueueIndices(int lastAvail, int used, int signalled, boolean signalledValid) {
    }

    private record ParkedRequest(int queue, int head, int kind, long sector, long bytes, long statusAddr, int inLen, long[] addr, int[] len) {
    }

    @Override
    public void loadState(StateReader in, int version) {
        mainLoop.assertInThread();
        if (running) {
            throw new IllegalStateException("virtio-blk '" + id + "': load the state before the VM starts");
        }
        long cap = in.u64("capacity");
        if (cap != capacitySectors) {
            throw in.fail("capacity", "is " + cap + " sectors, drive '" + backend.id() + "' here has " + capacitySectors);
        }
        long lbs = in.u32("logical block size");
        if (lbs != logicalBlockSize) {
            throw in.fail("logical block size", "is " + lbs + ", this device has " + logicalBlockSize);
        }
        long qsize = in.u32("queue-size");
        if (qsize != queueSize) {
            throw in.fail("queue-size", "is " + qsize + ", this device has " + queueSize);
        }
        int nq = in.u16("num-queues");
        if (nq != queues.length) {
            throw in.fail("num-queues", "is " + nq + ", this device has " + queues.length);
        }
        VirtioMmioTransport.Snapshot regs = transport.readState(in);
        QueueIndices[] indices = new QueueIndices[nq];
        for (int q = 0; q < nq; q++) {
            if (in.bool("queue " + q + " active")) {
                if (regs.layout(q) == null) {
                    throw in.fail("queue " + q + " active", "is set but the queue is not ready");
                }
                indices[q] = new QueueIndices(in.u16("queue " + q + " last available index"), in.u16("queue " + q + " used index"),
                        in.u16("queue " + q + " signalled used index"), in.bool("queue " + q + " signalled used valid"));
            }
        }
        long parkedCount = in.u32("parked requests", 0, (long) nq * queueSize);
        List<ParkedRequest> parked = new ArrayList<>();
        Set<Long> heads = new java.util.HashSet<>();
        for (long i = 0; i < parkedCount; i++) {
            String f = "parked request " + i;
            int q = in.u16(f + " queue");
            int head = in.u16(f + " head");
            if (q >= nq || indices[q] == null) {
                throw in.fail(f + " queue", "is " + q + ", not an active queue");
            }
            if (head >= regs.layout(q).size() || !heads.add((long) q << 16 | head)) {
                throw in.fail(f + " head", "is " + head + ": beyond the queue size or given twice");
            }
            int kind = in.u8(f + " kind");
            if (kind > BlkRequest.KIND_WRITE_ZEROES) {
                throw in.fail(f + " kind", "is " + kind + ", not a known operation");
            }
            long sector = in.u64(f + " sector");
            long bytes = in.u64(f + " bytes");
            long statusAddr = in.u64(f + " status address");
            if (!memory.isRam(statusAddr, 1)) {
                throw in.fail(f + " status address", "0x" + Long.toHexString(statusAddr) + " is outside guest RAM");
            }
            int inLen = (int) in.u32(f + " written length");
            int segs = (int) in.u32(f + " segments", 0, queueSize);
            long[] addr = new long[segs];
            int[] len = new int[segs];
            long total = 0;
            for (int s = 0; s < segs; s++) {
                addr[s] = in.u64(f + " segment " + s + " address");
                len[s] = (int) in.u32(f + " segment " + s + " length", 1, 0xffff_ffffL);
                if (!memory.isRam(addr[s], Integer.toUnsignedLong(len[s]))) {
                    throw in.fail(f + " segment " + s, "0x" + Long.toHexString(addr[s]) + " (" + Integer.toUnsignedLong(len[s])
                            + " bytes) is outside guest RAM");
                }
                total += Integer.toUnsignedLong(len[s]);
            }
            boolean data = kind == BlkRequest.KIND_IN || kind == BlkRequest.KIND_OUT;
            boolean ranged = data || kind == BlkRequest.KIND_DISCARD || kind == BlkRequest.KIND_WRITE_ZEROES;
            if (ranged && !rangeOk(sector, data ? total : bytes)) {
                throw in.fail(f, "covers sectors outside drive '" + backend.id() + "'");
            }
            parked.add(new ParkedRequest(q, head, kind, sector, bytes, statusAddr, inLen, addr, len));
        }
        in.expectEnd();

        // every value checked: apply
        transport.applyState(regs);
        negotiated = regs.negotiated();
        started = false;
        boolean eventIdx = BlkQueue.eventIdx(negotiated);
        for (int q = 0; q < nq; q++) {
            BlkQueue bq = queues[q];
            bq.clear();
            if (indices[q] != null) {
                QueueLayout l = regs.layout(q);
                try {
                    bq.vq.activate(l.size(), l.desc(), l.avail(), l.used(), eventIdx);
                } catch (io.modemu.virtio.VirtioProtocolException e) {
                    throw in.fail("queue " + q, e.getMessage());
                }
                QueueIndices ix = indices[q];
                bq.vq.restoreIndices(ix.lastAvail(), ix.used(), ix.signalled(), ix.signalledValid());
                started = true;
            }
        }
        for (ParkedRequest p : parked) {
            BlkRequest r = queues[p.queue()].request(p.head());
            r.kind = p.kind();
            r.sector = p.sector();
            r.bytes = p.bytes();
            r.statusAddr = p.statusAddr();
            r.inLen = p.inLen();
            r.clearSegments();
            for (int s = 0; s < p.addr().length; s++) {
                r.addSegment(p.addr()[s], p.len()[s]);
            }
            queues[p.queue()].restoreParked(r);
        }
    }

    @Override
    public String toString() {
        return "virtio-blk[" + id + ", drive " + backend.id() + "]";
    }
}
