package io.modemu.migration.rdmasim.verbs;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The requester half of the adapter for one connected queue pair: runs on the link's send thread,
 * takes requests off the send queue in order, checks them as the local adapter would, paces them
 * through the {@link LinkModel}, places one-sided data straight into the peer's memory
 * ({@link PeerMemory}) and hands messages to the wire. It also consumes the peer's acknowledgements
 * (on the receive thread) and fails a message that stays unacknowledged past the retry budget.
 */
final class Requester {
    private static final Logger log = LoggerFactory.getLogger(Requester.class);

    private final QueuePair qp;
    private final Link link;
    private final LinkModel model;
    /** Send thread only. */
    private int nextPsn = 1;
    /**
     * Whether the acknowledgement watchdog is scheduled (guarded by the queue pair's lock). One timer per
     * queue pair, at the oldest unacknowledged message's deadline, instead of one per message: a timer
     * per message woke the device's timer thread for each SEND, and on a small host that thread took a
     * processor from the threads carrying the messages.
     */
    private boolean watchdogArmed;

    private record Outcome(WcStatus status, String detail, byte[] frame, int psn, long visibleAt, boolean accessViolation) {
        static Outcome failed(WcStatus status, String detail) {
            return new Outcome(status, detail, null, 0, 0, false);
        }
    }

    Requester(QueuePair qp, Link link) {
        this.qp = qp;
        this.link = link;
        this.model = qp.device.linkModel();
    }

    /** The send thread. */
    void run() {
        try {
            while (true) {
                SendWqe w;
                qp.lock.lock();
                try {
                    while (true) {
                        if (link.isDown() || qp.link != link) {
                            return;
                        }
                        SendWqe head = qp.pending.peekFirst();
                        // inFlight: a poster may be executing a message inline (QueuePair.postSend)
                        if (qp.state == QpState.RTS && head != null && qp.inFlight == null && (!head.oneSided() || qp.awaitingAck.isEmpty())) {
                            break;
                        }
                        try {
                            qp.sqWork.await();
                        } catch (InterruptedException e) {
                            // Link.down wakes us this way; the loop re-checks
                        }
                    }
                    w = qp.pending.pollFirst();
                    qp.inFlight = w;
                } finally {
                    qp.lock.unlock();
                }
                Outcome o = executeGuarded(w);
                byte[] frame;
                qp.lock.lock();
                try {
                    frame = finish(w, o);
                } finally {
                    qp.lock.unlock();
                }
                if (frame != null) {
                    // outside the lock: the write may wait for the peer to read
                    link.sendDirect(frame);
                }
            }
        } finally {
            // a poster may still be executing a message inline against the peer's memory: it ends first
            qp.lock.lock();
            try {
                qp.awaitQuiet(false);
            } finally {
                qp.lock.unlock();
            }
            link.peerMemory.close();
        }
    }

    /**
     * Executes message {@code w}, which the poster claimed as {@code qp.inFlight} with the send queue
     * empty, on the posting thread — what a doorbell does on hardware: the message goes on the wire
     * without waking the send thread (one thread hand-off less per SEND). Everything posted before it
     * was executed already, so the order is the queue's.
     */
    void executeInline(SendWqe w) {
        Outcome o = executeGuarded(w);
        byte[] frame;
        qp.lock.lock();
        try {
            frame = finish(w, o);
            // requests posted meanwhile waited for this one
            qp.sqWork.signalAll();
        } finally {
            qp.lock.unlock();
        }
        if (frame != null) {
            link.sendDirect(frame);
        }
    }

    /** {@link #execute}, with a host bug turned into a local QP operation error on that request. */
    private Outcome executeGuarded(SendWqe w) {
        try {
            return execute(w);
        } catch (RuntimeException | Error e) {
            log.error("{}: executing wr_id {} failed", qp.name(), w.wr.wrId(), e);
            return Outcome.failed(WcStatus.LOC_QP_OP_ERR, qp.name() + ": internal error executing wr_id " + w.wr.wrId() + ": " + e);
        }
    }

    private static String opName(SendWorkRequest wr) {
        return switch (wr) {
            case SendWorkRequest.Send s -> "SEND";
            case SendWorkRequest.SendWithImmediate s -> "SEND with immediate";
            case SendWorkRequest.RdmaWrite s -> "RDMA WRITE";
            case SendWorkRequest.RdmaWriteWithImmediate s -> "RDMA WRITE with immediate";
            case SendWorkRequest.RdmaRead s -> "RDMA READ";
        };
    }

    private Outcome execute(SendWqe w) {
        SendWorkRequest wr = w.wr;
        String op = opName(wr);
        List<MemorySegment> local;
        try {
            local = qp.resolveLocal(wr.sgl(), wr instanceof SendWorkRequest.RdmaRead, op);
        } catch (QueuePair.LocalFault f) {
            return Outcome.failed(WcStatus.LOC_PROT_ERR, "wr_id " + wr.wrId() + ": " + f.getMessage());
        }
        long len = wr.length();
        boolean message = wr instanceof SendWorkRequest.Send || wr instanceof SendWorkRequest.SendWithImmediate;
        int maxMessage = qp.device.settings().maxMessageSize();
        if (message && len > maxMessage) {
            return Outcome.failed(WcStatus.LOC_LEN_ERR, who(wr) + ": " + op + " of " + len + " bytes is longer than the device's maximum message size " + maxMessage);
        }
        if (len > FabricSettings.MAX_RDMA_LENGTH) {
            return Outcome.failed(WcStatus.LOC_LEN_ERR, who(wr) + ": " + op + " of " + len + " bytes is longer than 2^31 - 1");
        }
        if (!model.isIdeal()) {
            model.sleepUntil(model.reserve(w.postedAt, len));
            if (link.isDown()) {
                return Outcome.failed(WcStatus.WR_FLUSH_ERR, who(wr) + ": the link went down before the request arrived");
            }
        }
        QpState remote = link.peerMemory.queuePairState(link.remoteSlot, link.remoteGeneration);
        if (remote != QpState.RTR && remote != QpState.RTS) {
            return Outcome.failed(WcStatus.RETRY_EXC_ERR, who(wr) + ": " + link.peerName() + " is " + (remote == null ? "gone" : "in " + remote)
                    + " and does not answer");
        }
        return switch (wr) {
            case SendWorkRequest.Send s -> message(Frame.OP_SEND, 0, len, gather(local, len));
            case SendWorkRequest.SendWithImmediate s -> message(Frame.OP_SEND_IMM, s.immediate(), len, gather(local, len));
            case SendWorkRequest.RdmaWrite x -> {
                String err = link.peerMemory.write(op, x.rkey(), x.remoteAddress(), local, len, link.remotePd);
                yield err != null ? violation(who(wr), err) : done();
            }
            case SendWorkRequest.RdmaWriteWithImmediate x -> {
                String err = link.peerMemory.write(op, x.rkey(), x.remoteAddress(), local, len, link.remotePd);
                yield err != null ? violation(who(wr), err) : message(Frame.OP_WRITE_IMM, x.immediate(), len, null);
            }
            case SendWorkRequest.RdmaRead x -> {
                String err = link.peerMemory.read(x.rkey(), x.remoteAddress(), local, len, link.remotePd);
                yield err != null ? violation(who(wr), err) : done();
            }
        };
    }

    private String who(SendWorkRequest wr) {
        return qp.name() + " wr_id " + wr.wrId();
    }

    private static byte[] gather(List<MemorySegment> local, long len) {
        byte[] out = new byte[(int) len];
        MemorySegment dst = MemorySegment.ofArray(out);
        long pos = 0;
        for (MemorySegment s : local) {
            MemorySegment.copy(s, 0, dst, pos, s.byteSize());
            pos += s.byteSize();
        }
        return out;
    }

    private Outcome message(int op, int imm, long len, byte[] payload) {
        int psn = nextPsn++;
        return new Outcome(WcStatus.SUCCESS, "", Frame.message(op, psn, imm, len, payload), psn, 0, false);
    }

    private Outcome done() {
        return new Outcome(WcStatus.SUCCESS, "", null, 0, System.nanoTime() + model.latencyNanos(), false);
    }

    private static Outcome violation(String who, String err) {
        return new Outcome(WcStatus.REM_ACCESS_ERR, who + ": " + err, null, 0, 0, true);
    }

    /** Lock held. Returns the message frame to put on the wire (after the lock is released), or null. */
    private byte[] finish(SendWqe w, Outcome o) {
        qp.inFlight = null;
        qp.quiet.signalAll();
        if (qp.link != link || qp.state != QpState.RTS) {
            if (qp.link == link && qp.state == QpState.ERROR) {
                qp.completeVictim(w);
                qp.flushPending();
            }
            return null;
        }
        if (o.status != WcStatus.SUCCESS) {
            // earlier messages still unacknowledged complete first, keeping the queue's order
            for (SendWqe a : qp.awaitingAck) {
                qp.completeSend(a, WcStatus.WR_FLUSH_ERR, "flushed: a later request failed: " + o.detail, System.nanoTime());
            }
            qp.awaitingAck.clear();
            qp.completeSend(w, o.status, o.detail, System.nanoTime());
            if (o.accessViolation) {
                link.send(Frame.accessViolation(o.detail));
            }
            qp.toError(WcStatus.WR_FLUSH_ERR, o.detail, true, false);
            return null;
        }
        if (o.frame != null) {
            // awaited before the frame leaves, so that its acknowledgement always finds it
            w.psn = o.psn;
            qp.awaitingAck.addLast(w);
            long budget = link.params.retryBudgetNanos();
            w.ackDeadline = System.nanoTime() + budget;
            if (!watchdogArmed) {
                watchdogArmed = true;
                qp.device.schedule(this::checkAcks, budget, TimeUnit.NANOSECONDS);
            }
            return o.frame;
        }
        qp.completeSend(w, WcStatus.SUCCESS, "", o.visibleAt);
        return null;
    }

    /**
     * The acknowledgement watchdog (timer thread): fails the queue pair when the oldest message that
     * waits for an acknowledgement (not for a receive at the peer) has used up the retry budget, else
     * looks again at that message's deadline.
     */
    private void checkAcks() {
        qp.lock.lock();
        try {
            watchdogArmed = false;
            if (qp.link != link || qp.state != QpState.RTS) {
                return;
            }
            for (SendWqe w : qp.awaitingAck) {
                if (w.done || w.rnrWaiting) {
                    continue;
                }
                long left = w.ackDeadline - System.nanoTime();
                if (left <= 0) {
                    ConnectionParameters p = link.params;
                    qp.toError(WcStatus.RETRY_EXC_ERR, String.format("%s did not acknowledge %s wr_id %d (PSN %d) within %d ms (retry_cnt %d, timeout %d ms)",
                            link.peerName(), opName(w.wr), w.wr.wrId(), w.psn, p.retryBudget().toMillis(), p.retryCount(), p.ackTimeout().toMillis()), true, false);
                } else {
                    watchdogArmed = true;
                    qp.device.schedule(this::checkAcks, left, TimeUnit.NANOSECONDS);
                }
                return;
            }
        } finally {
            qp.lock.unlock();
        }
    }

    private SendWqe head(int psn, String what) throws Frame.ProtocolException {
        SendWqe head = qp.awaitingAck.peekFirst();
        if (head == null || head.psn != psn) {
            throw new Frame.ProtocolException(what + " for PSN " + psn + " but the oldest unacknowledged message is "
                    + (head == null ? "none" : "PSN " + head.psn));
        }
        return head;
    }

    /** Receive thread: the peer placed message {@code psn}. */
    void onAck(int psn) throws Frame.ProtocolException {
        qp.lock.lock();
        try {
            if (qp.link != link || qp.state != QpState.RTS) {
                return;
            }
            SendWqe w = head(psn, "acknowledgement");
            qp.awaitingAck.pollFirst();
            qp.completeSend(w, WcStatus.SUCCESS, "", System.nanoTime() + model.latencyNanos());
            qp.sqWork.signalAll();
        } finally {
            qp.lock.unlock();
        }
    }

    /** Receive thread: message {@code psn} waits at the peer for a receive; its retry timer stops. */
    void onRnrWait(int psn) throws Frame.ProtocolException {
        qp.lock.lock();
        try {
            if (qp.link != link || qp.state != QpState.RTS) {
                return;
            }
            for (SendWqe w : qp.awaitingAck) {
                if (w.psn == psn) {
                    w.rnrWaiting = true;
                    return;
                }
            }
            throw new Frame.ProtocolException("receiver-not-ready notice for PSN " + psn + ", which is not outstanding");
        } finally {
            qp.lock.unlock();
        }
    }

    /** Receive thread: the peer refused message {@code psn}. */
    void onNak(int psn, WcStatus status, String detail) throws Frame.ProtocolException {
        qp.lock.lock();
        try {
            if (qp.link != link || qp.state != QpState.RTS) {
                return;
            }
            SendWqe w = head(psn, "NAK");
            qp.awaitingAck.pollFirst();
            String why = String.format("%s wr_id %d: %s refused %s (PSN %d) with %s: %s", qp.name(), w.wr.wrId(), link.peerName(),
                    opName(w.wr), psn, status, detail);
            qp.completeSend(w, status, why, System.nanoTime());
            qp.toError(WcStatus.WR_FLUSH_ERR, why, true, false);
        } finally {
            qp.lock.unlock();
        }
    }
}
