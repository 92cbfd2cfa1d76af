package io.modemu.migration.rdmasim.verbs;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A reliable-connected queue pair ({@code ibv_qp}): a send queue and a receive queue, connected to
 * exactly one queue pair of a peer by the connection manager.
 *
 * <p>State machine: RESET → INIT → RTR → RTS, any state → RESET or ERROR ({@link QpState}); a
 * transition outside it is refused with {@link VerbsException}. RTR needs the remote queue pair, so
 * {@link RdmaDevice#connect} and {@link ConnectRequest#accept} take a queue pair through INIT, RTR and
 * RTS, as {@code rdma_connect}/{@code rdma_accept} do.
 *
 * <p>Posting: sends need RTS; receives need INIT or later. Anything posted in ERROR completes at once
 * with {@link WcStatus#WR_FLUSH_ERR}. A request that fails completes with its error and takes the
 * queue pair to ERROR; everything behind it is flushed. A queue pair in ERROR tells its peer, which
 * goes to ERROR too (on hardware the peer would find out by its own time-outs).
 *
 * <p>Ordering, as reliable connection guarantees: requests execute in the order posted; a one-sided
 * request (RDMA WRITE, READ, WRITE with immediate) waits until every earlier message has been
 * acknowledged, so that it cannot land before a message posted ahead of it; completions of one queue
 * come out in the order posted.
 *
 * <p>Thread-safe. Requests are executed by the connection's send thread, except a message (SEND)
 * posted while nothing is queued or executing ahead of it on an ideal link: the posting thread executes
 * that one itself, as a doorbell would start it at once (one thread hand-off less per message).
 */
public final class QueuePair implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(QueuePair.class);

    final RdmaDevice device;
    final ProtectionDomain pd;
    final int slot;
    final int generation;
    private final int number;
    private final String name;
    final QueuePairConfig config;

    final ReentrantLock lock = new ReentrantLock();
    /** Signalled when the send thread may have work: a post, an acknowledgement, a state change. */
    final Condition sqWork = lock.newCondition();

    // ---- guarded by lock ----
    QpState state = QpState.RESET;
    final ArrayDeque<SendWqe> pending = new ArrayDeque<>();
    SendWqe inFlight;
    final ArrayDeque<SendWqe> awaitingAck = new ArrayDeque<>();
    private int sqUsed;
    private int unsignaledDone;
    final ArrayDeque<ReceiveWorkRequest> rq = new ArrayDeque<>();
    /** The receive the receive thread is filling from the socket, outside the lock. */
    ReceiveWorkRequest recvInFlight;
    /**
     * The receive whose buffers the receive thread is writing now (outside the lock), until it is done
     * with them whatever the outcome: {@link #close} waits for it, and for {@link #inFlight}.
     */
    ReceiveWorkRequest placing;
    /** Signalled when {@link #inFlight} or {@link #placing} is cleared. */
    final Condition quiet = lock.newCondition();
    final Responder.Backlog backlog = new Responder.Backlog();
    private WcStatus nextErrorStatus;
    private String errorReason;
    Link link;
    private boolean destroyed;

    QueuePair(RdmaDevice device, ProtectionDomain pd, int slot, int generation, QueuePairConfig config) {
        this.device = device;
        this.pd = pd;
        this.slot = slot;
        this.generation = generation;
        this.number = (generation & 0xff) << 16 | slot;
        this.name = String.format("QP 0x%x", number);
        this.config = config;
    }

    /** The queue pair number ({@code qp_num}), unique among this device's live queue pairs. */
    public int number() {
        return number;
    }

    public ProtectionDomain protectionDomain() {
        return pd;
    }

    public QueuePairConfig config() {
        return config;
    }

    public QpState state() {
        lock.lock();
        try {
            return state;
        } finally {
            lock.unlock();
        }
    }

    /** Why the queue pair went to ERROR, or null while it has not. */
    public String errorReason() {
        lock.lock();
        try {
            return errorReason;
        } finally {
            lock.unlock();
        }
    }

    String name() {
        return name;
    }

    // ---- state machine ----

    /**
     * {@code ibv_modify_qp} to {@code to}: INIT, RTS (from RTR), RESET or ERROR. RTR is reached
     * through the connection manager, which knows the remote queue pair.
     *
     * <p>RESET drops every posted request without completions and disconnects; ERROR flushes them.
     *
     * @throws VerbsException INVALID_STATE for a transition outside the state machine
     */
    public void modify(QpState to) {
        Objects.requireNonNull(to, "to");
        lock.lock();
        try {
            checkAlive();
            checkTransition(to);
            switch (to) {
                case RTR -> throw new VerbsException(VerbsException.Reason.INVALID_STATE, name()
                        + ": RTR needs the remote queue pair; RdmaDevice.connect or ConnectRequest.accept takes a queue pair there");
                case RESET -> {
                    reset("moved to RESET by the application");
                    // its requests are dropped without completions: as after close, none touches memory once this returns
                    awaitQuiet();
                }
                case INIT -> setState(QpState.INIT);
                case RTS -> {
                    setState(QpState.RTS);
                    sqWork.signalAll();
                }
                case ERROR -> toError(WcStatus.WR_FLUSH_ERR, name() + " was moved to ERROR by the application", true, false);
            }
        } finally {
            lock.unlock();
        }
    }

    private void checkTransition(QpState to) {
        if (!state.canMoveTo(to)) {
            List<QpState> allowed = new ArrayList<>();
            for (QpState s : QpState.values()) {
                if (state.canMoveTo(s)) {
                    allowed.add(s);
                }
            }
            throw new VerbsException(VerbsException.Reason.INVALID_STATE,
                    name() + " cannot go from " + state + " to " + to + " (from " + state + " it may go to " + allowed + ")");
        }
    }

    private void checkAlive() {
        if (destroyed) {
            throw new VerbsException(VerbsException.Reason.CLOSED, name() + " is destroyed");
        }
    }

    private void setState(QpState s) {
        state = s;
        device.publishQueuePair(this, s);
    }

    /** Connection manager: RESET → INIT on the way to a connection. */
    void prepareForConnection() {
        lock.lock();
        try {
            checkAlive();
            if (state == QpState.RESET) {
                setState(QpState.INIT);
            } else if (state != QpState.INIT) {
                throw new VerbsException(VerbsException.Reason.INVALID_STATE,
                        name() + " is in " + state + "; only a queue pair in RESET or INIT can be connected");
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Connection manager: INIT → RTR over {@code l}. The passive side does this before it accepts
     * (as InfiniBand CM moves it to RTR before sending REP), so that the peer may send at once.
     */
    void toRtr(Link l) {
        lock.lock();
        try {
            checkAlive();
            if (state != QpState.INIT) {
                throw new VerbsException(VerbsException.Reason.INVALID_STATE, name() + " left INIT while connecting (it is " + state + ")");
            }
            link = l;
            errorReason = null;
            setState(QpState.RTR);
        } finally {
            lock.unlock();
        }
    }

    /** Connection manager: RTR → RTS; the link's threads start now. */
    void toRts(Link l) {
        lock.lock();
        try {
            checkAlive();
            if (state != QpState.RTR || link != l) {
                throw new VerbsException(VerbsException.Reason.INVALID_STATE, name() + " left RTR while connecting (it is " + state + ")");
            }
            setState(QpState.RTS);
            l.start(this);
        } finally {
            lock.unlock();
        }
    }

    /** Connection manager: INIT → RTR → RTS over {@code l} (the active side, once accepted). */
    void connect(Link l) {
        toRtr(l);
        toRts(l);
    }

    /** Connection manager: the handshake failed after {@link #toRtr}; back to INIT without the link. */
    void abortConnect(Link l) {
        lock.lock();
        try {
            if (link == l && state == QpState.RTR) {
                link = null;
                setState(QpState.INIT);
            }
        } finally {
            lock.unlock();
        }
    }

    private void reset(String why) {
        recvInFlight = null;
        pending.clear();
        awaitingAck.clear();
        rq.clear();
        backlog.clear();
        sqUsed = 0;
        unsignaledDone = 0;
        nextErrorStatus = null;
        errorReason = null;
        if (link != null) {
            link.down(why, Frame.qpDown(false, why));
            link = null;
        }
        setState(QpState.RESET);
        sqWork.signalAll();
    }

    /**
     * Moves to ERROR (no-op if already there or in RESET). The first victim, in posting order, gets
     * {@code firstStatus} and the reason; every other outstanding request is flushed. Called with the
     * lock held.
     */
    void toError(WcStatus firstStatus, String reason, boolean notifyPeer, boolean orderly) {
        if (state == QpState.ERROR || state == QpState.RESET) {
            return;
        }
        if (orderly) {
            // a disconnect, as every connection ends: nothing an operator needs to see
            log.debug("{} → ERROR: {}", name(), reason);
        } else {
            log.info("{} → ERROR: {}", name(), reason);
        }
        setState(QpState.ERROR);
        errorReason = reason;
        nextErrorStatus = firstStatus;
        for (SendWqe w : awaitingAck) {
            completeVictim(w);
        }
        awaitingAck.clear();
        if (inFlight == null) {
            flushPending();
        }
        // a receive the receive thread is filling now is flushed by that thread once it is done with its
        // buffers (Responder.place): completed here, its owner could reuse them while they are written
        if (recvInFlight != null && recvInFlight != placing) {
            completeRecv(recvInFlight, WcStatus.WR_FLUSH_ERR, WcOpcode.RECV, 0, false, 0, flushDetail());
            recvInFlight = null;
        }
        for (ReceiveWorkRequest r : rq) {
            completeRecv(r, WcStatus.WR_FLUSH_ERR, WcOpcode.RECV, 0, false, 0, flushDetail());
        }
        rq.clear();
        backlog.clear();
        if (link != null) {
            link.down(reason, notifyPeer ? Frame.qpDown(orderly, reason) : null);
        }
        sqWork.signalAll();
    }

    /** Completes a request the error caught: the first gets the error's status, the others are flushed. */
    void completeVictim(SendWqe w) {
        WcStatus s = nextErrorStatus == null ? WcStatus.WR_FLUSH_ERR : nextErrorStatus;
        String detail = nextErrorStatus == null || nextErrorStatus == WcStatus.WR_FLUSH_ERR ? flushDetail() : errorReason;
        nextErrorStatus = null;
        completeSend(w, s, detail, System.nanoTime());
    }

    void flushPending() {
        for (SendWqe w : pending) {
            completeVictim(w);
        }
        pending.clear();
    }

    String flushDetail() {
        return "flushed: " + name() + " is in ERROR (" + errorReason + ")";
    }

    // ---- posting ----

    /**
     * {@code ibv_post_send}. Returns at once; the request executes on the connection's threads and
     * completes on the send completion queue.
     *
     * @throws VerbsException INVALID_STATE outside RTS (and ERROR, which flushes), QUEUE_FULL when
     *                        {@code max_send_wr} requests are outstanding, INVALID_ARGUMENT for too
     *                        many scatter/gather elements
     */
    public void postSend(SendWorkRequest wr) {
        Objects.requireNonNull(wr, "wr");
        Link inline = null;
        Link hintTo = null;
        SendWqe inlined = null;
        lock.lock();
        try {
            checkAlive();
            if (wr.sgl().size() > config.maxSendSge()) {
                throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, name() + ": send wr_id " + wr.wrId() + " has "
                        + wr.sgl().size() + " scatter/gather elements, max_send_sge is " + config.maxSendSge());
            }
            if (state == QpState.ERROR) {
                reportSend(wr, WcStatus.WR_FLUSH_ERR, flushDetail(), System.nanoTime());
                return;
            }
            if (state != QpState.RTS) {
                throw new VerbsException(VerbsException.Reason.INVALID_STATE,
                        name() + ": post_send in " + state + "; sends need RTS (connect the queue pair first)");
            }
            if (sqUsed >= config.maxSendWr()) {
                throw new VerbsException(VerbsException.Reason.QUEUE_FULL, name() + ": send queue full (" + sqUsed
                        + " requests outstanding, max_send_wr " + config.maxSendWr()
                        + "); poll the send completion queue, and signal requests so that their slots come back");
            }
            sqUsed++;
            SendWqe w = new SendWqe(wr, device.linkModel().now(), wr.signaled() || config.signalAll());
            if (link != null && pending.isEmpty() && inFlight == null && !w.oneSided() && device.linkModel().isIdeal()
                    && !Thread.currentThread().isInterrupted()) {
                // nothing ahead of it: the posting thread executes the message itself (see Requester.executeInline)
                inFlight = w;
                inline = link;
            } else {
                pending.addLast(w);
                sqWork.signalAll();
            }
            inlined = w;
            if (inline == null && link != null) {
                hintTo = link;
            }
        } finally {
            lock.unlock();
        }
        if (inline != null) {
            inline.requester().executeInline(inlined);
        } else if (hintTo != null) {
            // the adapter fetches the write's address translation while earlier requests execute (instanceof
            // rather than a pattern switch: the switch's type check trapped each time a SEND came between writes)
            if (wr instanceof SendWorkRequest.RdmaWrite x) {
                hintTo.peerMemory.prefetch(x.rkey(), x.remoteAddress(), x.length(), hintTo.remotePd);
            } else if (wr instanceof SendWorkRequest.RdmaWriteWithImmediate x) {
                hintTo.peerMemory.prefetch(x.rkey(), x.remoteAddress(), x.length(), hintTo.remotePd);
            }
        }
    }

    /** Posts {@code wrs} in order; stops at the first refused one, which the exception names. */
    public void postSend(List<? extends SendWorkRequest> wrs) {
        for (SendWorkRequest wr : wrs) {
            postSend(wr);
        }
    }

    /**
     * {@code ibv_post_recv}.
     *
     * @throws VerbsException INVALID_STATE in RESET, QUEUE_FULL when {@code max_recv_wr} receives are
     *                        posted, INVALID_ARGUMENT for too many scatter/gather elements
     */
    public void postRecv(ReceiveWorkRequest wr) {
        Objects.requireNonNull(wr, "wr");
        lock.lock();
        try {
            checkAlive();
            if (wr.sgl().size() > config.maxRecvSge()) {
                throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, name() + ": receive wr_id " + wr.wrId() + " has "
                        + wr.sgl().size() + " scatter/gather elements, max_recv_sge is " + config.maxRecvSge());
            }
            if (state == QpState.RESET) {
                throw new VerbsException(VerbsException.Reason.INVALID_STATE, name() + ": post_recv in RESET; move it to INIT first");
            }
            if (state == QpState.ERROR) {
                completeRecv(wr, WcStatus.WR_FLUSH_ERR, WcOpcode.RECV, 0, false, 0, flushDetail());
                return;
            }
            if (rq.size() >= config.maxRecvWr()) {
                throw new VerbsException(VerbsException.Reason.QUEUE_FULL,
                        name() + ": receive queue full (" + rq.size() + " posted, max_recv_wr " + config.maxRecvWr() + ")");
            }
            rq.addLast(wr);
            if (link != null && !backlog.isEmpty()) {
                link.responder().drainBacklog();
            }
        } finally {
            lock.unlock();
        }
    }

    // ---- completions (lock held) ----

    void completeSend(SendWqe w, WcStatus status, String detail, long visibleAt) {
        w.done = true;
        if (status != WcStatus.SUCCESS || w.signaled) {
            sqUsed -= 1 + unsignaledDone;
            unsignaledDone = 0;
            reportSend(w.wr, status, detail, visibleAt);
        } else {
            unsignaledDone++;
        }
    }

    private void reportSend(SendWorkRequest wr, WcStatus status, String detail, long visibleAt) {
        WorkCompletion wc = new WorkCompletion(wr.wrId(), status, wr.completionOpcode(), number, wr.length(), false, 0,
                status == WcStatus.SUCCESS ? "" : detail);
        if (!config.sendCq().add(wc, visibleAt)) {
            toError(WcStatus.WR_FLUSH_ERR, name() + ": its send completion queue overflowed", true, false);
        }
    }

    void completeRecv(ReceiveWorkRequest r, WcStatus status, WcOpcode opcode, long byteLength, boolean hasImm, int imm, String detail) {
        WorkCompletion wc = new WorkCompletion(r.wrId(), status, opcode, number, byteLength, hasImm, imm, status == WcStatus.SUCCESS ? "" : detail);
        if (!config.recvCq().add(wc, System.nanoTime())) {
            toError(WcStatus.WR_FLUSH_ERR, name() + ": its receive completion queue overflowed", true, false);
        }
    }

    // ---- local memory ----

    /**
     * The segments behind a scatter/gather list, checked as the local adapter would: each element in a
     * registered region of this protection domain, inside its bounds, with LOCAL_WRITE where the
     * adapter writes.
     */
    List<MemorySegment> resolveLocal(List<ScatterGatherElement> sgl, boolean adapterWrites, String what) throws LocalFault {
        List<MemorySegment> out = new ArrayList<>(sgl.size());
        for (ScatterGatherElement e : sgl) {
            MemoryRegion mr = device.localRegion(e.lkey());
            if (mr == null) {
                throw new LocalFault(where(what, e) + ": no memory region with this key is registered (never registered, or deregistered)");
            }
            if (mr.protectionDomain() != pd) {
                throw new LocalFault(where(what, e) + ": the region belongs to protection domain " + mr.protectionDomain().id()
                        + ", the queue pair to " + pd.id());
            }
            if (adapterWrites && (mr.accessBits() & Access.LOCAL_WRITE.bit) == 0) {
                throw new LocalFault(where(what, e) + ": the region was registered without LOCAL_WRITE");
            }
            long off = e.address() - mr.address();
            if (off < 0 || off > mr.length() - e.length()) {
                throw new LocalFault(where(what, e) + String.format(": outside the memory region [0x%x, 0x%x)", mr.address(), mr.address() + mr.length()));
            }
            if (e.length() > 0) {
                out.add(mr.segment().asSlice(off, e.length()));
            }
        }
        return out;
    }

    private String where(String what, ScatterGatherElement e) {
        return String.format("%s: %s element lkey 0x%x at 0x%x + %d", name, what, e.lkey(), e.address(), e.length());
    }

    /** A local protection error, found before anything moved. */
    static final class LocalFault extends Exception {
        private static final long serialVersionUID = 1L;

        LocalFault(String message) {
            super(message, null, false, false);
        }
    }

    // ---- connection events ----

    /** The link broke under us (peer died, link cut, protocol violation, no acknowledgement). */
    void linkFailed(Link l, String reason) {
        lock.lock();
        try {
            if (link == l) {
                toError(WcStatus.RETRY_EXC_ERR, reason, true, false);
            }
        } finally {
            lock.unlock();
        }
    }

    /** The peer's queue pair left RTS and said so. */
    void peerDown(Link l, boolean orderly, String detail) {
        lock.lock();
        try {
            if (link == l) {
                if (orderly) {
                    toError(WcStatus.WR_FLUSH_ERR, l.peerName() + " disconnected: " + detail, false, true);
                } else {
                    toError(WcStatus.RETRY_EXC_ERR, l.peerName() + "'s queue pair went to ERROR: " + detail, false, false);
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /** rdma_disconnect: ERROR on both ends, outstanding requests flushed. */
    void disconnect(Link l) {
        lock.lock();
        try {
            if (link == l) {
                toError(WcStatus.WR_FLUSH_ERR, name() + " disconnected locally", true, true);
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * {@code ibv_destroy_qp}: disconnects and frees the queue pair; outstanding requests vanish
     * without completions.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            if (destroyed) {
                return;
            }
            if (link != null) {
                link.down(name() + " was destroyed", Frame.qpDown(true, name() + " was destroyed"));
                link = null;
            }
            pending.clear();
            awaitingAck.clear();
            rq.clear();
            recvInFlight = null;
            backlog.clear();
            destroyed = true;
            state = QpState.RESET;
            sqWork.signalAll();
            // as ibv_destroy_qp: once this returns, no request of this queue pair touches memory any more,
            // so the caller may free its buffers
            awaitQuiet();
        } finally {
            lock.unlock();
        }
        device.destroyQueuePair(this);
    }

    /**
     * Lock held: waits (at most {@link #QUIESCE}, through interrupts) until no request executes (a copy)
     * and no receive is being filled from the socket. A socket that stalls is closed after the link's grace.
     */
    private void awaitQuiet() {
        awaitQuiet(true);
    }

    /** Lock held: {@link #awaitQuiet()}, or, without {@code receivesToo}, for the request executing only. */
    void awaitQuiet(boolean receivesToo) {
        long deadline = System.nanoTime() + QUIESCE.toNanos();
        boolean interrupted = false;
        long left;
        while ((inFlight != null || receivesToo && placing != null) && (left = deadline - System.nanoTime()) > 0) {
            try {
                quiet.awaitNanos(left);
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (inFlight != null || receivesToo && placing != null) {
            log.warn("{}: a request still executes after {} (wr_id {})", name(), QUIESCE, inFlight != null ? inFlight.wr.wrId() : placing.wrId());
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** How long {@link #close} waits for a request that executes: the link's grace to close a stalled socket, and some. */
    private static final Duration QUIESCE = Duration.ofSeconds(5);

    boolean isDestroyed() {
        lock.lock();
        try {
            return destroyed;
        } finally {
            lock.unlock();
        }
    }

    @Override
    public String toString() {
        return name() + "[" + state() + ", pd " + pd.id() + "]";
    }
}
