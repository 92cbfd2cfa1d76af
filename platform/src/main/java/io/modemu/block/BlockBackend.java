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
 * <p>Every request is answered exactly once. A host bug while submitting (a node whose size throws,
 * a driver that throws instead of completing) becomes {@code -EIO} for that request; a driver's second
 * completion of the same request is logged and ignored. Neither can leak or double-release an
 * in-flight count, so a drain always ends.
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
    private final ConcurrentLinkedQueue<Request> parked = new ConcurrentLinkedQueue<>();
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
        submit(new Request(Kind.READ, offset, buffer.byteSize(), buffer, done));
    }

    /** Writes {@code buffer} at {@code offset}. */
    public void write(long offset, MemorySegment buffer, BlockCompletion done) {
        submit(new Request(Kind.WRITE, offset, buffer.byteSize(), buffer, done));
    }

    public void flush(BlockCompletion done) {
        submit(new Request(Kind.FLUSH, 0, 0, null, done));
    }

    public void discard(long offset, long length, BlockCompletion done) {
        submit(new Request(Kind.DISCARD, offset, length, null, done));
    }

    public void writeZeroes(long offset, long length, BlockCompletion done) {
        submit(new Request(Kind.ZEROES, offset, length, null, done));
    }

    /** Flush as a stage, from any thread. */
    public CompletionStage<Integer> flush() {
        CompletableFuture<Integer> f = new CompletableFuture<>();
        flush(f::complete);
        return f;
    }

    private enum Kind { READ, WRITE, FLUSH, DISCARD, ZEROES }

    /**
     * One request from submission to its caller's callback: the driver's completion, and the task
     * that starts it on the backend's context or finishes it there. One object per request, so the
     * hot path allocates nothing else. Completion is accepted once: a driver that completes twice, or
     * completes and then throws, is logged and cannot release the in-flight count twice.
     */
    private final class Request implements BlockCompletion, Runnable {
        private static final java.lang.invoke.VarHandle COMPLETED;

        static {
            try {
                COMPLETED = java.lang.invoke.MethodHandles.lookup().findVarHandle(Request.class, "completed", boolean.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        final Kind kind;
        final long offset;
        final long length;
        final MemorySegment buffer;
        final BlockCompletion done;
        /** Set by the first completion; a later one is a driver bug. */
        @SuppressWarnings("unused")
        private volatile boolean completed;
        /** Whether {@link #run()} finishes (the completion came from another thread) rather than starts. */
        private boolean finishing;
        private int status;

        Request(Kind kind, long offset, long length, MemorySegment buffer, BlockCompletion done) {
            this.kind = kind;
            this.offset = offset;
            this.length = length;
            this.buffer = buffer;
            this.done = done;
        }

        /** Starts the request on the node. Backend context; never throws. */
        void start() {
            try {
                AioContext ctx = context;
                switch (kind) {
                    case READ -> node.read(ctx, offset, buffer, this);
                    case WRITE -> node.write(ctx, offset, buffer, this);
                    case FLUSH -> node.flush(ctx, this);
                    case DISCARD -> node.discard(ctx, offset, length, this);
                    case ZEROES -> node.writeZeroes(ctx, offset, length, this);
                }
            } catch (Throwable t) {
                log.error("drive '{}': driver threw instead of completing", id, t);
                fail();
            }
        }

        /** Completes with EIO unless the request already completed. Used after a host bug. */
        void fail() {
            if (!completed) {
                complete(-Errno.EIO);
            }
        }

        /** The driver's completion. Any thread; forwarded to the backend's context. */
        @Override
        public void complete(int result) {
            if (!COMPLETED.compareAndSet(this, false, true)) {
                log.error("drive '{}': driver completed a {} request twice (second status {}), ignored", id, kind, result);
                return;
            }
            status = result;
            AioContext ctx = context;
            if (ctx.inThread()) {
                finish(this);
            } else {
                finishing = true;
                ctx.execute(this);
            }
        }

        /** Starts the request, or finishes it after a completion from another thread. Backend context. */
        @Override
        public void run() {
            if (finishing) {
                finish(this);
            } else {
                start();
            }
        }
    }

    private void submit(Request r) {
        inFlight.incrementAndGet();
        if (quiesceCounter > 0) {
            parked.add(r);
            parkedTotal.increment();
            // the request counts again when resubmitted: a drain does not wait for parked requests
            release();
            if (quiesceCounter == 0) {
                context.execute(resubmitParked);
            }
            return;
        }
        try {
            int check = check(r.offset, r.length, r.kind == Kind.WRITE || r.kind == Kind.DISCARD || r.kind == Kind.ZEROES);
            if (check != 0) {
                r.complete(check);
                return;
            }
            AioContext ctx = context;
            if (ctx.inThread()) {
                r.start();
            } else {
                ctx.execute(r);
            }
        } catch (Throwable t) {
            // a host bug (the node's size, a context refusing work): the request fails, it is never lost
            log.error("drive '{}': submitting a {} request failed", id, r.kind, t);
            r.fail();
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

    private void finish(Request r) {
        int status = r.status;
        try {
            if (status < 0) {
                stats.failedOps.increment();
                switch (r.kind) {
                    case READ -> stats.failedRd.increment();
                    case WRITE, ZEROES -> stats.failedWr.increment();
                    case FLUSH -> stats.failedFlush.increment();
                    case DISCARD -> stats.failedUnmap.increment();
                }
            } else {
                switch (r.kind) {
                    case READ -> {
                        stats.rdOps.increment();
                        stats.rdBytes.add(r.length);
                    }
                    case WRITE -> {
                        stats.wrOps.increment();
                        stats.wrBytes.add(r.length);
                        stats.wrHighest.accumulate(r.offset + r.length);
                    }
                    case FLUSH -> stats.flushOps.increment();
                    case DISCARD -> stats.discardOps.increment();
                    case ZEROES -> stats.zeroOps.increment();
                }
            }
            r.done.complete(status);
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
        Request r;
        while (quiesceCounter == 0 && (r = parked.poll()) != null) {
            submit(r);
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
