package io.modemu.migration.rdmasim.verbs;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One established connection between a local and a remote queue pair: the socket standing in for the
 * wire, the mapping of the peer's memory, and the three threads that play the adapter — the send
 * thread ({@link Requester}: executes the send queue), the receive thread (reads frames: inbound
 * messages for the {@link Responder}, acknowledgements for the requester) and the transmit thread
 * (writes frames, so that neither of the others ever blocks on the socket).
 *
 * <p>The socket also tells this side when the peer process dies: the kernel closes it, the receive
 * thread reads end-of-file, and the queue pair goes to ERROR with {@link WcStatus#RETRY_EXC_ERR}.
 *
 * <p>A link goes down once ({@link #down}); it is never brought up again.
 */
final class Link {
    private static final Logger log = LoggerFactory.getLogger(Link.class);
    private static final byte[] END = new byte[0];
    private static final Duration CLOSE_GRACE = Duration.ofSeconds(2);

    final RdmaDevice device;
    final SocketChannel channel;
    final PeerMemory peerMemory;
    final int remoteSlot;
    final int remoteGeneration;
    final int remotePd;
    final int remoteQpNumber;
    final int peerRnrRetry;
    final ConnectionParameters params;
    final long peerPid;
    private final String peerName;
    /** Frames for the transmit thread, and who writes the socket now; guarded by {@code wire}. */
    private final ArrayDeque<byte[]> out = new ArrayDeque<>();
    private final ReentrantLock wire = new ReentrantLock();
    private final Condition wireWork = wire.newCondition();
    /** A thread is writing a frame to the socket (the transmit thread, or the send thread directly). */
    private boolean writing;
    /** The send thread is writing a frame directly: it must not be interrupted (that would close the socket). */
    private boolean directWriting;
    private final CompletableFuture<String> downFuture = new CompletableFuture<>();
    private volatile boolean down;
    private volatile boolean cut;
    private QueuePair qp;
    private Requester requester;
    private Responder responder;
    private Thread sendThread;
    private Thread transmitThread;

    Link(RdmaDevice device, SocketChannel channel, PeerMemory peerMemory, CmMessage.Endpoint peer, String peerAddress,
         ConnectionParameters params) {
        this.device = device;
        this.channel = channel;
        this.peerMemory = peerMemory;
        this.remoteSlot = peer.qpNumber() & 0xffff;
        this.remoteGeneration = peer.qpGeneration();
        this.remotePd = peer.pd();
        this.remoteQpNumber = peer.qpNumber();
        this.peerRnrRetry = peer.rnrRetry();
        this.params = params;
        this.peerPid = peer.pid();
        this.peerName = String.format("peer QP 0x%x (pid %d at %s)", peer.qpNumber(), peer.pid(), peerAddress);
        device.track(this);
    }

    String peerName() {
        return peerName;
    }

    Responder responder() {
        return responder;
    }

    Requester requester() {
        return requester;
    }

    /** The thread executing the send queue (tests observe it waiting). */
    Thread sendThread() {
        return sendThread;
    }

    boolean isDown() {
        return down;
    }

    CompletionStage<String> downFuture() {
        return downFuture;
    }

    /** Starts the adapter threads for {@code q}. Called once, by the queue pair, with its lock held. */
    void start(QueuePair q) {
        this.qp = q;
        q.pd.peerPids.add(peerPid);
        this.requester = new Requester(q, this);
        this.responder = new Responder(q, this);
        String base = "rdma-sim " + q.name() + " ";
        sendThread = Thread.ofPlatform().daemon().name(base + "send").start(requester::run);
        Thread.ofPlatform().daemon().name(base + "recv").start(this::readLoop);
        transmitThread = Thread.ofPlatform().daemon().name(base + "xmit").start(this::writeLoop);
    }

    /** Queues a frame for the peer; dropped once the link is down. Never blocks. */
    void send(byte[] frame) {
        wire.lock();
        try {
            if (!down) {
                out.add(frame);
                wireWork.signal();
            }
        } finally {
            wire.unlock();
        }
    }

    /**
     * The send thread's messages: written to the socket on the calling thread when nothing is queued
     * and nobody is writing (one thread hand-off less per message: the transmit thread would have to be
     * woken and scheduled), otherwise queued behind what is. Either way frames leave in the order they
     * were handed over. May block while the peer's socket buffer is full; never called with the queue
     * pair's lock held (the receive thread, which must never block, needs it).
     */
    void sendDirect(byte[] frame) {
        wire.lock();
        try {
            if (down) {
                return;
            }
            if (writing || !out.isEmpty()) {
                out.add(frame);
                wireWork.signal();
                return;
            }
            writing = true;
            directWriting = true;
        } finally {
            wire.unlock();
        }
        try {
            ByteBuffer b = ByteBuffer.wrap(frame);
            while (b.hasRemaining()) {
                channel.write(b);
            }
        } catch (IOException e) {
            fault("sending to " + peerName + " failed: " + e.getMessage());
        } finally {
            wire.lock();
            try {
                writing = false;
                directWriting = false;
                if (!out.isEmpty()) {
                    wireWork.signal();
                }
            } finally {
                wire.unlock();
            }
        }
    }

    /**
     * Takes the link down: sends {@code lastFrame} (if any) and closes the socket. Idempotent. Called
     * with the queue pair's lock held.
     */
    void down(String reason, byte[] lastFrame) {
        boolean interrupt;
        wire.lock();
        try {
            if (down) {
                return;
            }
            if (lastFrame != null) {
                out.add(lastFrame);
            }
            down = true;
            out.add(END);
            wireWork.signal();
            // a send thread writing a frame directly finds the link down when its write returns
            interrupt = !directWriting;
        } finally {
            wire.unlock();
        }
        downFuture.complete(reason);
        if (sendThread != null) {
            if (interrupt) {
                sendThread.interrupt();
            }
        } else {
            peerMemory.close();
            closeChannel();
        }
        // a transmit thread stuck on a peer that stopped reading must not keep the socket forever
        device.schedule(this::closeChannel, CLOSE_GRACE);
    }

    /** Fault injection: the cable is pulled. No goodbye; both ends find out as from a dead peer. */
    void cut() {
        cut = true;
        closeChannel();
    }

    private void closeChannel() {
        try {
            channel.close();
        } catch (IOException e) {
            log.debug("closing the connection to {}: {}", peerName, e.toString());
        }
        if (down) {
            device.forget(this);
        }
    }

    /** Device close: waits until the transmit thread sent what was queued (at most until {@code deadline}). */
    void awaitTransmitted(long deadline) {
        Thread t = transmitThread;
        long left = deadline - System.nanoTime();
        if (t != null && left > 0) {
            try {
                t.join(Duration.ofNanos(left));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Device close: closes the socket whatever state the link is in. */
    void forceClose() {
        closeChannel();
        device.forget(this);
    }

    private void fault(String why) {
        if (down) {
            return;
        }
        String reason = cut ? "the link to " + peerName + " was cut" : why;
        qp.linkFailed(this, reason);
        closeChannel();
    }

    private void writeLoop() {
        try {
            while (true) {
                byte[] f;
                wire.lock();
                try {
                    while (writing || out.isEmpty()) {
                        wireWork.await();
                    }
                    f = out.pollFirst();
                    writing = f != END;
                } finally {
                    wire.unlock();
                }
                if (f == END) {
                    closeChannel();
                    return;
                }
                try {
                    ByteBuffer b = ByteBuffer.wrap(f);
                    while (b.hasRemaining()) {
                        channel.write(b);
                    }
                } finally {
                    wire.lock();
                    try {
                        writing = false;
                    } finally {
                        wire.unlock();
                    }
                }
            }
        } catch (IOException e) {
            fault("sending to " + peerName + " failed: " + e.getMessage());
        } catch (InterruptedException e) {
            closeChannel();
        } catch (RuntimeException | Error e) {
            log.error("transmit thread for {} failed", peerName, e);
            fault("internal error sending to " + peerName + ": " + e);
        }
    }

    private void readLoop() {
        ByteBuffer header = ByteBuffer.allocate(Frame.HEADER);
        try {
            while (true) {
                Frame f = Frame.readHeader(channel, header);
                switch (f.type) {
                    case Frame.MSG -> responder.onMessage(f);
                    case Frame.ACK -> requester.onAck(f.psn);
                    case Frame.RNR_WAIT -> requester.onRnrWait(f.psn);
                    case Frame.NAK -> requester.onNak(f.psn, WcStatus.fromCode(f.code), f.readDetail(channel));
                    case Frame.ACCESS_VIOLATION -> responder.onAccessViolation(f.readDetail(channel));
                    case Frame.QP_DOWN -> qp.peerDown(this, (f.flags & 1) != 0, f.readDetail(channel));
                    default -> throw new Frame.ProtocolException("frame type " + f.type + " is unknown");
                }
            }
        } catch (Frame.ProtocolException e) {
            log.warn("{} broke the protocol: {}", peerName, e.getMessage());
            fault(peerName + " broke the protocol: " + e.getMessage());
        } catch (EOFException e) {
            fault(peerName + " closed the connection (the process died or closed its device)");
        } catch (java.net.SocketException e) {
            // a reset: the peer's socket went away with data unread, as when its process dies
            fault(peerName + " closed the connection (the process died or closed its device): " + e.getMessage());
        } catch (IOException e) {
            fault("lost the connection to " + peerName + ": " + e.getMessage());
        } catch (RuntimeException | Error e) {
            log.error("receive thread for {} failed", peerName, e);
            fault("internal error receiving from " + peerName + ": " + e);
        }
    }

    @Override
    public String toString() {
        return "Link[" + peerName + (down ? ", down" : "") + "]";
    }
}
