package io.modemu.block;

import io.modemu.aio.AioContext;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The device-facing handle of a drive (QEMU's BlockBackend): asynchronous requests straight between
 * guest RAM and a {@link BlockNode}, an {@link AioContext} the requests run in, in-flight counting
 * and drained sections.
 *
 * <p>Threads. Requests are normally submitted on {@link #context()}; a request submitted from any
 * other thread is forwarded there. Completions are always delivered on {@link #context()}. The
 * in-flight count rises when a request is submitted and falls after its completion callback
 * returned. Drained sections and {@link #setAioContext} run on the main loop only.
 *
 * <p>Drained sections. While at least one section is open, new requests are parked and resubmitted
 * when the last section ends; {@link #drainedBegin()} completes once nothing is in flight. The
 * attached device is told through {@link BlockDevOps} so that it stops taking requests.
 *
 * <p>Moving. {@link #setAioContext} is one transaction on the main loop inside a drained section:
 * with nothing in flight, the device may veto, then the context changes, then the section ends.
 * Either the backend moved or it did not; no request ever straddles two contexts.
 */
public final class BlockBackend {
    private static final Logger log = LoggerFactory.getLogger(BlockBackend.class);

    private final String id;
    private final String driverName;
    private final BlockNode node;
    private final AioContext mainLoop;
    private final boolean readOnly;
    private final BlockStats stats = new BlockStats();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final java.util.concurrent.atomic.LongAdder parkedTotal = new java.util.concurrent.atomic.LongAdder();
    private final ConcurrentLinkedQueue<Runnable> parked = new ConcurrentLinkedQueue<>();
    private final List<CompletableFuture<Void>> drainWaiters = new ArrayList<>();
    private final Runnable resubmitParked = this::resubmitParked;
    private final Runnable checkDrained = this::checkDrained;
    private volatile AioContext context;
    private volatile int quiesceCounter;
    private BlockDevOps devOps;
    private String attachedDevice;

    public BlockBackend(String id, BlockNode node, AioContext mainLoop, boolean readOnly) {
        this(id, "unknown", node, mainLoop, readOnly);
    }

    /** @param driverName the block driver that opened {@code node}, for {@code query-block} */
    public BlockBackend(String id, String driverName, BlockNode node, AioContext mainLoop, boolean readOnly) {
        this.id = id;
        this.driverName = driverName;
        this.node = node;
        this.mainLoop = mainLoop;
        this.context = mainLoop;
        this.readOnly = readOnly || node.isReadOnly();
    }

    public String id() {
        return id;
    }

    /** The block driver that opened the node (for example {@code file}). */
    public String driverName() {
        return driverName;
    }

    public BlockNode node() {
        return node;
    }

    public long size() {
        return node.size();
    }

    public boolean isReadOnly() {
        return readOnly;
    }

    public BlockStats stats() {
        return stats;
    }

    /** The context requests run in and completions are delivered in. */
    public AioContext context() {
        return context;
    }

    /** Requests in flight now. */
    public int inFlight() {
        return inFlight.get();
    }

    /**
     * How many requests arrived during a drained section and were parked, since the backend was
     * created. A device that stops submitting when told ({@link BlockDevOps#drainedBegin()}, or its
     * own stop handler) keeps this at zero.
     */
    public long parkedTotal() {
        return parkedTotal.sum();
    }

    /** Whether a drained section is open. */
    public boolean isQuiesced() {
        return quiesceCounter > 0;
    }

    /** The id of the attached device, or null. */
    public String attachedDevice() {
        return attachedDevice;
    }

    /**
     * Attaches a device. Runs on the main loop. A backend serves one device at a time.
     *
     * @throws IllegalStateException if another device is attached
     */
    public void attach(String deviceId, BlockDevOps ops) {
        mainLoop.assertInThread();
        if (attachedDevice != null) {
            throw new io.modemu.options.ConfigurationException("drive '" + id + "' is already in use by device '" + attachedDevice + "'");
        }
        attachedDevice = deviceId;
        devOps = ops;
    }

    /** Detaches the device. Runs on the main loop. */
    public void detach() {
        mainLoop.assertInThread();
        attachedDevice = null;
        devOps = null;
    }

    // ---- requests ----

    /** Reads {@code buffer.byteSize()} bytes at {@code offset} into {@code buffer}. */
    public void read(long offset, MemorySegment buffer, BlockCompletion done) {
        long len = buffer.byteSize();
        submit(offset, len, false, done, cb -> node.read(context, offset, buffer, cb), Kind.READ);
    }

    /** Writes {@code buffer} at {@code offset}. */
    public void write(long offset, MemorySegment buffer, BlockCompletion done) {
        long len = buffer.byteSize();
        submit(offset, len, true, done, cb -> node.write(context, offset, buffer, cb), Kind.WRITE);
    }

    public void flush(BlockCompletion done) {
        submit(0, 0, false, done, cb -> node.flush(context, cb), Kind.FLUSH);
    }

    public void discard(long offset, long length, BlockCompletion done) {
        submit(offset, length, true, done, cb -> node.discard(context, offset, length, cb), Kind.DISCARD);
    }

    public void writeZeroes(long offset, long length, BlockCompletion done) {
        submit(offset, length, true, done, cb -> node.writeZeroes(context, offset, length, cb), Kind.ZEROES);
    }

    /** Flush as a stage, from any thread. */
    public CompletionStage<Integer> flush() {
        CompletableFuture<Integer> f = new CompletableFuture<>();
        flush(f::complete);
        return f;
    }

    private enum Kind { READ, WRITE, FLUSH, DISCARD, ZEROES }

    private interface Start {
        void start(BlockCompletion cb);
    }

    private void submit(long offset, long length, boolean writes, BlockCompletion done, Start start, Kind kind) {
        inFlight.incrementAndGet();
        if (quiesceCounter > 0) {
            parked.add(() -> submit(offset, length, writes, done, start, kind));
            parkedTotal.increment();
            release();
            if (quiesceCounter == 0) {
                context.execute(resubmitParked);
            }
            return;
        }
        BlockCompletion cb = status -> deliver(done, status, kind, offset, length);
        int check = check(offset, length, writes);
        if (check != 0) {
            cb.complete(check);
            return;
        }
        AioContext ctx = context;
        if (ctx.inThread()) {
            startGuarded(start, cb);
        } else {
            ctx.execute(() -> startGuarded(start, cb));
        }
    }

    private int check(long offset, long length, boolean writes) {
        if (offset < 0 || length < 0 || offset > node.size() - length) {
            return -Errno.EIO;
        }
        if (writes && readOnly) {
            return -Errno.EPERM;
        }
        return 0;
    }

    private void startGuarded(Start start, BlockCompletion cb) {
        try {
            start.start(cb);
        } catch (Throwable t) {
            log.error("drive '{}': driver threw instead of completing", id, t);
            cb.complete(-Errno.EIO);
        }
    }

    private void deliver(BlockCompletion done, int status, Kind kind, long offset, long length) {
        AioContext ctx = context;
        if (ctx.inThread()) {
            finish(done, status, kind, offset, length);
        } else {
            ctx.execute(() -> finish(done, status, kind, offset, length));
        }
    }

    private void finish(BlockCompletion done, int status, Kind kind, long offset, long length) {
        try {
            if (status < 0) {
                stats.failedOps.increment();
                switch (kind) {
                    case READ -> stats.failedRd.increment();
                    case WRITE, ZEROES -> stats.failedWr.increment();
                    case FLUSH -> stats.failedFlush.increment();
                    case DISCARD -> stats.failedUnmap.increment();
                }
            } else {
                switch (kind) {
                    case READ -> {
                        stats.rdOps.increment();
                        stats.rdBytes.add(length);
                    }
                    case WRITE -> {
                        stats.wrOps.increment();
                        stats.wrBytes.add(length);
                        stats.wrHighest.accumulate(offset + length);
                    }
                    case FLUSH -> stats.flushOps.increment();
                    case DISCARD -> stats.discardOps.increment();
                    case ZEROES -> stats.zeroOps.increment();
                }
            }
            done.complete(status);
        } catch (Throwable t) {
            log.error("drive '{}': completion callback threw", id, t);
        } finally {
            release();
        }
    }

    private void release() {
        if (inFlight.decrementAndGet() == 0 && quiesceCounter > 0) {
            mainLoop.execute(checkDrained);
        }
    }

    private void resubmitParked() {
        Runnable r;
        while (quiesceCounter == 0 && (r = parked.poll()) != null) {
            r.run();
        }
    }

    // ---- drained sections, on the main loop ----

    /**
     * Opens a drained section: the device is told to stop submitting, new requests are parked, and
     * the stage completes on the main loop once nothing is in flight. Runs on the main loop; pair it
     * with {@link #drainedEnd()}.
     */
    public CompletionStage<Void> drainedBegin() {
        mainLoop.assertInThread();
        if (quiesceCounter++ == 0 && devOps != null) {
            devOps.drainedBegin();
        }
        CompletableFuture<Void> f = new CompletableFuture<>();
        if (inFlight.get() == 0) {
            f.complete(null);
        } else {
            drainWaiters.add(f);
        }
        return f;
    }

    /** Closes a drained section; with the last one, parked requests are resubmitted. Runs on the main loop. */
    public void drainedEnd() {
        mainLoop.assertInThread();
        if (quiesceCounter <= 0) {
            throw new IllegalStateException("drive '" + id + "': drainedEnd without drainedBegin");
        }
        if (--quiesceCounter == 0) {
            if (devOps != null) {
                devOps.drainedEnd();
            }
            if (!parked.isEmpty()) {
                context.execute(resubmitParked);
            }
        }
    }

    /** Waits (asynchronously) until nothing is in flight: a drained section that closes at once. Main loop. */
    public CompletionStage<Void> drain() {
        return drainedBegin().thenRun(this::drainedEnd);
    }

    private void checkDrained() {
        if (inFlight.get() == 0 && !drainWaiters.isEmpty()) {
            List<CompletableFuture<Void>> ws = new ArrayList<>(drainWaiters);
            drainWaiters.clear();
            for (CompletableFuture<Void> w : ws) {
                w.complete(null);
            }
        }
    }

    /**
     * Moves the backend to {@code target}: inside a drained section, on the main loop, as one
     * transaction (QEMU's blk_set_aio_context done right). Completes on the main loop; fails, with
     * the backend unmoved, if the attached device vetoes.
     */
    public CompletionStage<Void> setAioContext(AioContext target) {
        mainLoop.assertInThread();
        if (target == context) {
            return CompletableFuture.completedFuture(null);
        }
        return drainedBegin().thenCompose(v -> {
            try {
                mainLoop.assertInThread();
                if (inFlight.get() != 0) {
                    throw new IllegalStateException("drive '" + id + "': " + inFlight.get() + " requests in flight inside a drained section");
                }
                if (devOps != null) {
                    devOps.prepareAioContextChange(target);
                }
                context = target;
                return CompletableFuture.<Void>completedFuture(null);
            } catch (Throwable t) {
                return CompletableFuture.<Void>failedFuture(t);
            } finally {
                drainedEnd();
            }
        });
    }

    /** Closes the node. Runs on the main loop once nothing is in flight. */
    public void close() {
        mainLoop.assertInThread();
        node.close();
    }

    @Override
    public String toString() {
        return "BlockBackend[" + id + " in " + context.name() + "]";
    }
}
