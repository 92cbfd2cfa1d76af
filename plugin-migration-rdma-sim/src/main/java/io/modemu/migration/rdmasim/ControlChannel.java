package io.modemu.migration.rdmasim;

import io.modemu.migration.rdmasim.verbs.Access;
import io.modemu.migration.rdmasim.verbs.CompletionQueue;
import io.modemu.migration.rdmasim.verbs.Connection;
import io.modemu.migration.rdmasim.verbs.MemoryRegion;
import io.modemu.migration.rdmasim.verbs.ProtectionDomain;
import io.modemu.migration.rdmasim.verbs.QpState;
import io.modemu.migration.rdmasim.verbs.QueuePair;
import io.modemu.migration.rdmasim.verbs.QueuePairConfig;
import io.modemu.migration.rdmasim.verbs.RdmaDevice;
import io.modemu.migration.rdmasim.verbs.ReceiveWorkRequest;
import io.modemu.migration.rdmasim.verbs.ScatterGatherElement;
import io.modemu.migration.rdmasim.verbs.SendWorkRequest;
import io.modemu.migration.rdmasim.verbs.VerbsException;
import io.modemu.migration.rdmasim.verbs.WcStatus;
import io.modemu.migration.rdmasim.verbs.WorkCompletion;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One migration connection over a queue pair: a byte stream in each direction carried by SEND/RECV
 * messages (configuration, device state and control: everything but one-sided RAM writes), typed
 * control messages for the transport itself (chunk registration), and the completion poller that
 * drives it all.
 *
 * <p>Each message is a type byte and a payload, at most {@link #SLOT} bytes, sent from one of
 * {@link #SEND_SLOTS} registered send buffers into one of {@link #RECV_SLOTS} posted receive buffers.
 * A receive buffer holding stream bytes goes back to the queue only once the reader consumed them, so
 * a reader that falls behind makes the sender wait (receiver not ready), and a sender that waits
 * longer than its timeout for a free buffer fails the write instead of hanging.
 *
 * <p>Threads: one poller thread per channel takes completions; one thread at a time writes and one
 * reads the stream; RDMA WRITEs are posted by the {@link RamImporter}. {@link #close()} may be called
 * from any thread and fails blocked calls promptly. Any error completion fails the channel with the
 * fabric's description of the culprit.
 */
final class ControlChannel implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ControlChannel.class);

    // 16 x 32 KiB each way: in one-sided mode the stream carries records and device state only, and
    // every buffer byte is a page to fault in when the connection starts
    static final int SLOT = 32 * 1024;
    static final int RECV_SLOTS = 16;
    static final int SEND_SLOTS = 16;
    /** RDMA WRITEs in flight at once. */
    static final int WRITE_DEPTH = 128;

    static final int MSG_STREAM = 1;
    static final int MSG_REGISTER = 2;
    static final int MSG_REGISTERED = 3;
    static final int MSG_GOODBYE = 4;

    private static final long KIND_RECV = 1L << 56;
    private static final long KIND_SEND = 2L << 56;
    private static final long KIND_WRITE = 3L << 56;
    private static final long KIND_MASK = 0xffL << 56;

    /** Transport messages other than stream bytes; runs on the poller thread and must not block. */
    interface Handler {
        void onControl(int type, ByteBuffer body) throws IOException;
    }

    /** Completions of RDMA WRITEs posted with {@link #postWrite}; runs on the poller thread. */
    interface WriteListener {
        void completed(WorkCompletion wc);
    }

    private final RdmaDevice device;
    private final ProtectionDomain pd;
    private final CompletionQueue cq;
    private final QueuePair qp;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment recvArea;
    private final MemorySegment sendArea;
    private final MemoryRegion recvMr;
    private final MemoryRegion sendMr;
    private final Runnable onClose;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    // guarded by lock
    private final ArrayDeque<Integer> freeSend = new ArrayDeque<>();
    private final ArrayDeque<byte[]> pendingControl = new ArrayDeque<>();
    private final ArrayDeque<Inbound> inbound = new ArrayDeque<>();
    private IOException failure;
    private boolean peerFinished;
    /** close() began: stream reads and writes fail from now on (the goodbye still goes out). */
    private boolean closing;
    private boolean closed;

    private volatile Connection connection;
    private volatile String peer = "the peer";
    private volatile Handler handler;
    private volatile WriteListener writeListener;
    private Thread poller;
    private final java.util.concurrent.atomic.AtomicBoolean closeOnce = new java.util.concurrent.atomic.AtomicBoolean();

    private static final class Inbound {
        final int slot;
        final int length;
        int pos;

        Inbound(int slot, int length) {
            this.slot = slot;
            this.length = length;
            this.pos = 1;
        }
    }

    /**
     * Creates the queue pair and posts the receives, before the connection exists (the peer may
     * send as soon as it is connected).
     *
     * @param onClose run once the channel released everything (for example to release a shared device)
     */
    ControlChannel(RdmaDevice device, Runnable onClose) {
        this.device = device;
        this.onClose = onClose;
        this.pd = device.allocateProtectionDomain();
        this.cq = device.createCompletionQueue(4 * (RECV_SLOTS + SEND_SLOTS + WRITE_DEPTH));
        this.qp = pd.createQueuePair(new QueuePairConfig(cq, cq, SEND_SLOTS + WRITE_DEPTH + 8, RECV_SLOTS, 1, 1, false));
        this.recvArea = arena.allocate((long) SLOT * RECV_SLOTS, 4096);
        this.sendArea = arena.allocate((long) SLOT * SEND_SLOTS, 4096);
        this.recvMr = pd.register(recvArea, Access.LOCAL_WRITE);
        this.sendMr = pd.register(sendArea);
        qp.modify(QpState.INIT);
        for (int i = 0; i < RECV_SLOTS; i++) {
            postRecv(i);
        }
        for (int i = 0; i < SEND_SLOTS; i++) {
            freeSend.add(i);
        }
    }

    QueuePair queuePair() {
        return qp;
    }

    ProtectionDomain protectionDomain() {
        return pd;
    }

    RdmaDevice device() {
        return device;
    }

    String peer() {
        return peer;
    }

    void setHandler(Handler h) {
        this.handler = h;
    }

    void setWriteListener(WriteListener l) {
        this.writeListener = l;
    }

    /** The connection is up: start taking completions. */
    void attach(Connection c, String peerName) {
        this.connection = c;
        this.peer = peerName;
        this.poller = Thread.ofPlatform().daemon().name("rdma-sim migration poller " + peerName).start(this::poll);
    }

    private void postRecv(int slot) {
        qp.postRecv(ReceiveWorkRequest.of(KIND_RECV | slot, ScatterGatherElement.of(recvMr, (long) slot * SLOT, SLOT)));
    }

    // ---- poller ----

    private void poll() {
        try {
            while (true) {
                WorkCompletion wc = cq.take(Duration.ofMillis(200));
                if (closedNow()) {
                    return;
                }
                if (wc != null) {
                    dispatch(wc);
                }
            }
        } catch (InterruptedException e) {
            // closing
        } catch (VerbsException e) {
            fail(new IOException("rdma-sim: the connection to " + peer + " broke: " + e.getMessage(), e));
        } catch (RuntimeException | Error e) {
            log.error("rdma-sim: the poller of the connection to {} failed", peer, e);
            fail(new IOException("rdma-sim: internal error on the connection to " + peer + ": " + e, e));
        }
    }

    private boolean closedNow() {
        lock.lock();
        try {
            return closed;
        } finally {
            lock.unlock();
        }
    }

    private void dispatch(WorkCompletion wc) {
        long kind = wc.wrId() & KIND_MASK;
        if (kind == KIND_WRITE) {
            WriteListener l = writeListener;
            if (l != null) {
                l.completed(wc);
            }
            if (!wc.isSuccess()) {
                failed(wc);
            }
            return;
        }
        if (!wc.isSuccess()) {
            failed(wc);
            return;
        }
        int slot = (int) wc.wrId();
        if (kind == KIND_SEND) {
            lock.lock();
            try {
                byte[] next = pendingControl.pollFirst();
                if (next != null) {
                    postSend(slot, next, 0, next.length);
                } else {
                    freeSend.addLast(slot);
                    changed.signalAll();
                }
            } finally {
                lock.unlock();
            }
            return;
        }
        int length = (int) wc.byteLength();
        long base = (long) slot * SLOT;
        if (length == 0) {
            fail(new IOException("rdma-sim: " + peer + " sent an empty transport message"));
            return;
        }
        int type = recvArea.get(ValueLayout.JAVA_BYTE, base) & 0xff;
        switch (type) {
            case MSG_STREAM -> {
                lock.lock();
                try {
                    if (failure != null) {
                        // what comes after the failure (a peer's broken message) is not part of the stream
                        return;
                    }
                    if (peerFinished) {
                        fail(new IOException("rdma-sim: " + peer + " sent stream bytes after its goodbye"));
                        return;
                    }
                    inbound.addLast(new Inbound(slot, length));
                    changed.signalAll();
                } finally {
                    lock.unlock();
                }
            }
            case MSG_GOODBYE -> {
                lock.lock();
                try {
                    peerFinished = true;
                    changed.signalAll();
                } finally {
                    lock.unlock();
                }
                repost(slot);
            }
            default -> {
                Handler h = handler;
                try {
                    if (h == null) {
                        throw new IOException("rdma-sim: " + peer + " sent transport message type " + type + ", which this end does not expect");
                    }
                    h.onControl(type, recvArea.asSlice(base + 1, length - 1).asByteBuffer().asReadOnlyBuffer());
                } catch (IOException e) {
                    fail(e);
                    return;
                }
                repost(slot);
            }
        }
    }

    private void repost(int slot) {
        try {
            postRecv(slot);
        } catch (VerbsException e) {
            fail(new IOException("rdma-sim: cannot post a receive on the connection to " + peer + ": " + e.getMessage(), e));
        }
    }

    private void failed(WorkCompletion wc) {
        lock.lock();
        try {
            if (closed || peerFinished && wc.status() == WcStatus.WR_FLUSH_ERR) {
                return;
            }
        } finally {
            lock.unlock();
        }
        String why = wc.status() == WcStatus.WR_FLUSH_ERR && qp.errorReason() != null ? qp.errorReason() : wc.status() + ": " + wc.detail();
        fail(new IOException("rdma-sim: the connection to " + peer + " failed: " + why));
    }

    /**
     * Fails the channel: every blocked and later call throws {@code e}, and the connection goes down, so
     * that the peer learns of it at once instead of waiting for an answer until its io timeout.
     */
    void fail(IOException e) {
        boolean first;
        lock.lock();
        try {
            first = failure == null && !closed;
            if (first) {
                failure = e;
                log.warn("{}", e.getMessage());
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        Connection c = connection;
        if (first && c != null) {
            try {
                c.disconnect();
            } catch (RuntimeException ex) {
                log.debug("rdma-sim: disconnecting from {} after a failure: {}", peer, ex.toString());
            }
        }
    }

    private void checkUsable() throws IOException {
        if (failure != null) {
            throw new IOException(failure.getMessage(), failure);
        }
        if (closed) {
            throw new IOException("rdma-sim: the connection to " + peer + " is closed");
        }
    }

    /** Lock held: like {@link #checkUsable}, and fails once close() began (stream calls). */
    private void checkOpenForStream() throws IOException {
        checkUsable();
        if (closing) {
            throw new IOException("rdma-sim: the connection to " + peer + " is closed");
        }
    }

    // ---- sending ----

    /** Lock held. */
    private void postSend(int slot, byte[] message, int off, int len) {
        long base = (long) slot * SLOT;
        MemorySegment.copy(MemorySegment.ofArray(message), off, sendArea, base, len);
        qp.postSend(new SendWorkRequest.Send(KIND_SEND | slot, List.of(ScatterGatherElement.of(sendMr, base, len)), true));
    }

    /** Lock held: waits for a free send buffer. */
    private int takeSendSlot(Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            checkOpenForStream();
            if (peerFinished) {
                throw new IOException("rdma-sim: " + peer + " closed the connection");
            }
            Integer s = freeSend.pollFirst();
            if (s != null) {
                return s;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new SocketTimeoutException("rdma-sim: " + peer + " took no data for " + timeout.toMillis() + " ms");
            }
            try {
                changed.awaitNanos(left);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("rdma-sim: interrupted while sending to " + peer);
            }
        }
    }

    /** Writes every remaining byte of {@code srcs} into the stream; waits at most {@code timeout} for each buffer to free up. */
    void write(ByteBuffer[] srcs, Duration timeout) throws IOException {
        int i = 0;
        while (true) {
            while (i < srcs.length && !srcs[i].hasRemaining()) {
                i++;
            }
            if (i == srcs.length) {
                return;
            }
            lock.lock();
            try {
                int slot = takeSendSlot(timeout);
                long base = (long) slot * SLOT;
                sendArea.set(ValueLayout.JAVA_BYTE, base, (byte) MSG_STREAM);
                int n = 1;
                while (n < SLOT && i < srcs.length) {
                    ByteBuffer src = srcs[i];
                    int k = Math.min(SLOT - n, src.remaining());
                    MemorySegment.copy(MemorySegment.ofBuffer(src), 0, sendArea, base + n, k);
                    src.position(src.position() + k);
                    n += k;
                    if (!src.hasRemaining()) {
                        i++;
                    }
                }
                try {
                    qp.postSend(new SendWorkRequest.Send(KIND_SEND | slot, List.of(ScatterGatherElement.of(sendMr, base, n)), true));
                } catch (VerbsException e) {
                    throw new IOException("rdma-sim: sending to " + peer + " failed: " + e.getMessage(), e);
                }
            } finally {
                lock.unlock();
            }
        }
    }

    /** Sends a transport message without blocking: queued when every send buffer is busy. Any thread, the poller included. */
    void sendControl(int type, byte[] body) throws IOException {
        if (body.length + 1 > SLOT) {
            throw new IllegalArgumentException("control message of " + body.length + " bytes");
        }
        byte[] m = new byte[body.length + 1];
        m[0] = (byte) type;
        System.arraycopy(body, 0, m, 1, body.length);
        sendMessage(m);
    }

    /** Sends {@code m} as one transport message, as it is: {@link #sendControl}, and tests that send malformed ones. */
    void sendMessage(byte[] m) throws IOException {
        if (m.length > SLOT) {
            throw new IllegalArgumentException("transport message of " + m.length + " bytes");
        }
        lock.lock();
        try {
            checkUsable();
            Integer s = freeSend.pollFirst();
            if (s == null) {
                pendingControl.addLast(m);
            } else {
                postSend(s, m, 0, m.length);
            }
        } catch (VerbsException e) {
            throw new IOException("rdma-sim: sending to " + peer + " failed: " + e.getMessage(), e);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Posts an RDMA WRITE. A signaled write's completion goes to the {@link WriteListener}; an
     * unsignaled one reports only a failure (its success is implied by the next signaled write's, since
     * a queue pair completes in order).
     */
    void postWrite(long id, ScatterGatherElement local, long remoteAddress, int rkey, boolean signaled) throws IOException {
        try {
            qp.postSend(new SendWorkRequest.RdmaWrite(KIND_WRITE | id, List.of(local), remoteAddress, rkey, signaled));
        } catch (VerbsException e) {
            throw new IOException("rdma-sim: writing to " + peer + " failed: " + e.getMessage(), e);
        }
    }

    // ---- receiving ----

    /**
     * Reads at least one stream byte into {@code dst}, waiting at most {@code timeout} (forever if null).
     *
     * @return the bytes read, or -1 once the peer closed the channel and everything was read
     */
    int read(ByteBuffer dst, Duration timeout) throws IOException {
        long deadline = timeout == null ? 0 : System.nanoTime() + timeout.toNanos();
        int repost = -1;
        int n;
        lock.lock();
        try {
            while (true) {
                Inbound head = inbound.peekFirst();
                if (head != null) {
                    n = Math.min(dst.remaining(), head.length - head.pos);
                    MemorySegment.copy(recvArea, (long) head.slot * SLOT + head.pos, MemorySegment.ofBuffer(dst), 0, n);
                    dst.position(dst.position() + n);
                    head.pos += n;
                    if (head.pos == head.length) {
                        inbound.pollFirst();
                        repost = head.slot;
                    }
                    break;
                }
                checkOpenForStream();
                if (peerFinished) {
                    return -1;
                }
                try {
                    if (timeout == null) {
                        changed.await();
                    } else {
                        long left = deadline - System.nanoTime();
                        if (left <= 0) {
                            throw new SocketTimeoutException("rdma-sim: nothing from " + peer + " within " + timeout.toMillis() + " ms");
                        }
                        changed.awaitNanos(left);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("rdma-sim: interrupted while reading from " + peer);
                }
            }
        } finally {
            lock.unlock();
        }
        if (repost >= 0) {
            repost(repost);
        }
        return n;
    }

    // ---- close ----

    /**
     * Says goodbye (the peer's reads then end with -1), disconnects and releases everything.
     * Idempotent; any thread.
     */
    @Override
    public void close() {
        closeWith(() -> { });
    }

    /** Closes, running {@code beforeRelease} after the queue pair is gone and before the protection domain goes. */
    void closeWith(Runnable beforeRelease) {
        if (!closeOnce.compareAndSet(false, true)) {
            return;
        }
        boolean sayGoodbye;
        lock.lock();
        try {
            closing = true;
            changed.signalAll();
            sayGoodbye = failure == null && !peerFinished && connection != null && connection.isConnected();
        } finally {
            lock.unlock();
        }
        if (sayGoodbye) {
            try {
                sendControl(MSG_GOODBYE, new byte[0]);
                awaitSendsDone(Duration.ofSeconds(1));
            } catch (IOException e) {
                log.debug("rdma-sim: no goodbye to {}: {}", peer, e.getMessage());
            }
        }
        lock.lock();
        try {
            closed = true;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        Connection c = connection;
        if (c != null) {
            c.disconnect();
        }
        Thread p = poller;
        if (p != null && p != Thread.currentThread()) {
            p.interrupt();
            try {
                p.join(TimeUnit.SECONDS.toMillis(5));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try {
            qp.close();
            beforeRelease.run();
            recvMr.deregister();
            sendMr.deregister();
            cq.close();
            pd.close();
        } catch (VerbsException e) {
            log.warn("rdma-sim: releasing the connection to {}: {}", peer, e.getMessage());
        }
        arena.close();
        onClose.run();
    }

    /** Waits until every send buffer is back (the peer took everything sent), at most {@code timeout}. */
    private void awaitSendsDone(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        lock.lock();
        try {
            while ((freeSend.size() < SEND_SLOTS || !pendingControl.isEmpty()) && failure == null && !peerFinished) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return;
                }
                changed.awaitNanos(left);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            lock.unlock();
        }
    }

    /** Fault injection: cuts the connection's link. */
    void cutLink() {
        Connection c = connection;
        if (c != null) {
            c.cutLink();
        }
    }

    boolean isFailed() {
        return failure() != null;
    }

    /** Why the channel failed, or null. */
    IOException failure() {
        lock.lock();
        try {
            return failure;
        } finally {
            lock.unlock();
        }
    }
}
