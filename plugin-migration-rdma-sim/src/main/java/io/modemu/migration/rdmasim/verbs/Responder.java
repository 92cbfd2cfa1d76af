package io.modemu.migration.rdmasim.verbs;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The responder half of the adapter for one connected queue pair: consumes the peer's messages on the
 * link's receive thread, matches each with the oldest posted receive, scatters the payload into it
 * straight from the socket, completes it and acknowledges.
 *
 * <p>A message that finds no receive is held (the receiver-not-ready case): the requester is told to
 * stop its retry timer, and the message is placed as soon as a receive is posted, in order. If the
 * requester's {@code rnr_retry} runs out first (immediately for 0, never for 7), the message is
 * refused with {@link WcStatus#RNR_RETRY_EXC_ERR}. Messages after a refused one are dropped, as
 * out-of-sequence packets would be.
 */
final class Responder {
    private final QueuePair qp;
    private final Link link;
    /** Receive thread only. */
    private final ByteBuffer scratch = ByteBuffer.allocate(64 * 1024);
    /** Guarded by the queue pair's lock. */
    private boolean refusing;

    /** What a held message costs besides its payload (its objects, and its timer), against {@link #heldLimit}. */
    static final long HELD_OVERHEAD = 256;
    private static final long HELD_BYTES = 64L << 20;

    /**
     * The most a queue pair holds for want of a receive, payloads plus {@link #HELD_OVERHEAD} each: 64 MiB,
     * or one message of the largest size if that is more. On hardware the responder holds nothing (the
     * requester sends again after each receiver-not-ready NAK); here the payload has left the socket
     * already, so a peer that keeps sending with no receive posted (and rnr_retry 7, "forever") must
     * meet a limit, or it would fill this process's memory.
     */
    static long heldLimit(int maxMessageSize) {
        return Math.max(HELD_BYTES, maxMessageSize + HELD_OVERHEAD);
    }

    /** The messages held, oldest first, and what they cost. Guarded by the queue pair's lock. */
    static final class Backlog {
        private final ArrayDeque<Inbound> held = new ArrayDeque<>();
        private long charge;

        boolean isEmpty() {
            return held.isEmpty();
        }

        int size() {
            return held.size();
        }

        /** Payload bytes plus overhead of the held messages. */
        long charge() {
            return charge;
        }

        Inbound peekFirst() {
            return held.peekFirst();
        }

        void addLast(Inbound in) {
            held.addLast(in);
            charge += in.data.length + HELD_OVERHEAD;
        }

        Inbound pollFirst() {
            Inbound in = held.pollFirst();
            if (in != null) {
                charge -= in.data.length + HELD_OVERHEAD;
            }
            return in;
        }

        void clear() {
            held.clear();
            charge = 0;
        }
    }

    /** A message held for want of a receive. Fields guarded by the queue pair's lock. */
    static final class Inbound {
        final Frame frame;
        final byte[] data;
        boolean placed;

        Inbound(Frame frame, byte[] data) {
            this.frame = frame;
            this.data = data;
        }
    }

    Responder(QueuePair qp, Link link) {
        this.qp = qp;
        this.link = link;
    }

    private boolean receiving() {
        return qp.link == link && (qp.state == QpState.RTR || qp.state == QpState.RTS) && !refusing;
    }

    private static String what(Frame f) {
        return switch (f.code) {
            case Frame.OP_SEND -> "SEND";
            case Frame.OP_SEND_IMM -> "SEND with immediate";
            default -> "RDMA WRITE with immediate";
        };
    }

    /** Receive thread: message {@code f} arrived; its payload follows on the socket. */
    void onMessage(Frame f) throws IOException {
        long payload = f.code == Frame.OP_WRITE_IMM ? 0 : f.length;
        if (f.code == Frame.OP_WRITE_IMM && f.length > FabricSettings.MAX_RDMA_LENGTH) {
            throw new Frame.ProtocolException("RDMA WRITE with immediate of " + f.length + " bytes");
        }
        ReceiveWorkRequest r = null;
        boolean buffer = false;
        qp.lock.lock();
        try {
            int max = qp.device.settings().maxMessageSize();
            if (!receiving()) {
                // dropped: the queue pair is going down or refused an earlier message
            } else if (payload > max) {
                // refused whether a receive is posted or not, before a byte of it is read
                String why = qp.name() + ": " + what(f) + " PSN " + f.psn + " of " + payload + " bytes is longer than the maximum message size " + max;
                refuse(f.psn, WcStatus.REM_INV_REQ_ERR, why);
                qp.toError(WcStatus.WR_FLUSH_ERR, why, true, false);
            } else if (!qp.backlog.isEmpty() || qp.rq.isEmpty()) {
                if (link.peerRnrRetry == 0) {
                    refuse(f.psn, WcStatus.RNR_RETRY_EXC_ERR, qp.name() + " had no receive posted for " + what(f) + " PSN " + f.psn
                            + " (the sender's rnr_retry is 0)");
                } else if (qp.backlog.charge() + payload + HELD_OVERHEAD > heldLimit(max)) {
                    // refused as if the requester's RNR retries had run out, at the oldest message waiting
                    Inbound oldest = qp.backlog.peekFirst();
                    int psn = oldest == null ? f.psn : oldest.frame.psn;
                    refuse(psn, WcStatus.RNR_RETRY_EXC_ERR, String.format("%s had no receive posted for %s PSN %d while %s kept sending: it holds %d "
                            + "messages (%d bytes) already, and the %d bytes of PSN %d would pass the %d bytes it holds at most", qp.name(),
                            oldest == null ? what(f) : what(oldest.frame), psn, link.peerName(), qp.backlog.size(), qp.backlog.charge(), payload,
                            f.psn, heldLimit(max)));
                } else {
                    buffer = true;
                }
            } else {
                r = qp.rq.pollFirst();
                qp.recvInFlight = r;
                qp.placing = r;
            }
        } finally {
            qp.lock.unlock();
        }
        if (buffer) {
            hold(f, payload);
        } else if (r != null) {
            place(r, f, payload);
        } else {
            Frame.skip(link.channel, payload, scratch);
        }
    }

    private void hold(Frame f, long payload) throws IOException {
        byte[] data = new byte[(int) payload];
        Frame.readFully(link.channel, ByteBuffer.wrap(data));
        qp.lock.lock();
        try {
            if (!receiving()) {
                return;
            }
            Inbound in = new Inbound(f, data);
            qp.backlog.addLast(in);
            drainBacklog();
            if (!in.placed && receiving()) {
                link.send(Frame.rnrWait(f.psn));
                if (link.peerRnrRetry != ConnectionParameters.RNR_RETRY_FOREVER) {
                    Duration budget = link.params.minRnrTimer().multipliedBy(link.peerRnrRetry);
                    qp.device.schedule(() -> onRnrExpired(in, budget), budget.toNanos(), TimeUnit.NANOSECONDS);
                }
            }
        } finally {
            qp.lock.unlock();
        }
    }

    private void place(ReceiveWorkRequest r, Frame f, long payload) throws IOException {
        try {
            fill(r, f, payload);
        } finally {
            qp.lock.lock();
            try {
                if (qp.placing == r) {
                    qp.placing = null;
                    if (qp.recvInFlight == r && qp.state == QpState.ERROR) {
                        // the queue pair failed while the buffers were filled: flushed now that they are no longer written
                        qp.recvInFlight = null;
                        qp.completeRecv(r, WcStatus.WR_FLUSH_ERR, WcOpcode.RECV, 0, false, 0, qp.flushDetail());
                    }
                    qp.quiet.signalAll();
                }
            } finally {
                qp.lock.unlock();
            }
        }
    }

    private void fill(ReceiveWorkRequest r, Frame f, long payload) throws IOException {
        List<MemorySegment> segs;
        try {
            segs = qp.resolveLocal(r.sgl(), true, "receive wr_id " + r.wrId());
        } catch (QueuePair.LocalFault lf) {
            Frame.skip(link.channel, payload, scratch);
            failReceive(r, f, WcStatus.LOC_PROT_ERR, lf.getMessage(), WcStatus.REM_OP_ERR);
            return;
        }
        if (payload > r.capacity()) {
            Frame.skip(link.channel, payload, scratch);
            failReceive(r, f, WcStatus.LOC_LEN_ERR, tooLong(r, f, payload), WcStatus.REM_INV_REQ_ERR);
            return;
        }
        long left = payload;
        try {
            for (MemorySegment s : segs) {
                if (left == 0) {
                    break;
                }
                long n = Math.min(s.byteSize(), left);
                Frame.readFully(link.channel, s.asSlice(0, n).asByteBuffer());
                left -= n;
            }
        } catch (IllegalStateException closed) {
            Frame.skip(link.channel, left, scratch);
            failReceive(r, f, WcStatus.LOC_PROT_ERR, qp.name() + ": receive wr_id " + r.wrId() + ": its memory was freed: " + closed.getMessage(),
                    WcStatus.REM_OP_ERR);
            return;
        }
        qp.lock.lock();
        try {
            if (qp.recvInFlight == r && qp.state != QpState.ERROR) {
                qp.recvInFlight = null;
                complete(r, f);
            }
        } finally {
            qp.lock.unlock();
        }
    }

    private String tooLong(ReceiveWorkRequest r, Frame f, long payload) {
        return qp.name() + ": " + what(f) + " PSN " + f.psn + " of " + payload + " bytes does not fit receive wr_id " + r.wrId() + " of "
                + r.capacity() + " bytes";
    }

    /** Lock held: the receive is filled; complete it and acknowledge. */
    private void complete(ReceiveWorkRequest r, Frame f) {
        boolean writeImm = f.code == Frame.OP_WRITE_IMM;
        qp.completeRecv(r, WcStatus.SUCCESS, writeImm ? WcOpcode.RECV_RDMA_WITH_IMM : WcOpcode.RECV, f.length, f.code != Frame.OP_SEND,
                f.immediate, "");
        link.send(Frame.ack(f.psn));
    }

    private void failReceive(ReceiveWorkRequest r, Frame f, WcStatus local, String detail, WcStatus remote) {
        qp.lock.lock();
        try {
            if (qp.link != link || qp.recvInFlight != r || qp.state == QpState.ERROR) {
                // gone, or failed meanwhile: flushed by place once the buffers are no longer written
                return;
            }
            qp.recvInFlight = null;
            qp.completeRecv(r, local, WcOpcode.RECV, 0, false, 0, detail);
            refuse(f.psn, remote, detail);
            qp.toError(WcStatus.WR_FLUSH_ERR, detail, true, false);
        } finally {
            qp.lock.unlock();
        }
    }

    /** Lock held: NAKs message {@code psn}; later messages are dropped. */
    private void refuse(int psn, WcStatus status, String detail) {
        refusing = true;
        qp.backlog.clear();
        link.send(Frame.nak(psn, status, detail));
    }

    /** Lock held: places held messages into receives, oldest first, while both are there. */
    void drainBacklog() {
        while (receiving() && !qp.backlog.isEmpty() && !qp.rq.isEmpty()) {
            Inbound in = qp.backlog.pollFirst();
            in.placed = true;
            ReceiveWorkRequest r = qp.rq.pollFirst();
            Frame f = in.frame;
            String problem = null;
            WcStatus local = null;
            WcStatus remote = null;
            try {
                List<MemorySegment> segs = qp.resolveLocal(r.sgl(), true, "receive wr_id " + r.wrId());
                if (in.data.length > r.capacity()) {
                    problem = tooLong(r, f, in.data.length);
                    local = WcStatus.LOC_LEN_ERR;
                    remote = WcStatus.REM_INV_REQ_ERR;
                } else {
                    MemorySegment src = MemorySegment.ofArray(in.data);
                    long pos = 0;
                    for (MemorySegment s : segs) {
                        long n = Math.min(s.byteSize(), in.data.length - pos);
                        if (n == 0) {
                            break;
                        }
                        MemorySegment.copy(src, pos, s, 0, n);
                        pos += n;
                    }
                }
            } catch (QueuePair.LocalFault lf) {
                problem = lf.getMessage();
                local = WcStatus.LOC_PROT_ERR;
                remote = WcStatus.REM_OP_ERR;
            } catch (IllegalStateException closed) {
                problem = qp.name() + ": receive wr_id " + r.wrId() + ": its memory was freed: " + closed.getMessage();
                local = WcStatus.LOC_PROT_ERR;
                remote = WcStatus.REM_OP_ERR;
            }
            if (problem != null) {
                qp.completeRecv(r, local, WcOpcode.RECV, 0, false, 0, problem);
                refuse(f.psn, remote, problem);
                qp.toError(WcStatus.WR_FLUSH_ERR, problem, true, false);
                return;
            }
            complete(r, f);
        }
    }

    private void onRnrExpired(Inbound in, Duration budget) {
        qp.lock.lock();
        try {
            if (receiving() && !in.placed && qp.backlog.peekFirst() == in) {
                refuse(in.frame.psn, WcStatus.RNR_RETRY_EXC_ERR, String.format("%s had no receive posted for %s PSN %d within rnr_retry %d x min_rnr_timer = %d ms",
                        qp.name(), what(in.frame), in.frame.psn, link.peerRnrRetry, budget.toMillis()));
            }
        } finally {
            qp.lock.unlock();
        }
    }

    /** Receive thread: the peer's adapter refused one of its requests against this side's memory (responder class C error). */
    void onAccessViolation(String detail) {
        qp.lock.lock();
        try {
            if (qp.link == link) {
                qp.toError(WcStatus.WR_FLUSH_ERR, link.peerName() + " made a request this side's memory refuses: " + detail, false, false);
            }
        } finally {
            qp.lock.unlock();
        }
    }
}
