package io.modemu.migration.rdmasim.verbs;

import java.io.DataInputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.channels.SocketChannel;
import java.util.Objects;

/**
 * A connection request ({@code RDMA_CM_EVENT_CONNECT_REQUEST}) waiting for the application's answer:
 * {@link #accept} or {@link #reject}, exactly once.
 */
public final class ConnectRequest {
    private final RdmaDevice device;
    private final SocketChannel channel;
    private final Socket socket;
    private final CmMessage.Endpoint peer;
    private final String peerAddress;
    private boolean answered;

    ConnectRequest(RdmaDevice device, SocketChannel channel, Socket socket, CmMessage.Endpoint peer, String peerAddress) {
        this.device = device;
        this.channel = channel;
        this.socket = socket;
        this.peer = peer;
        this.peerAddress = peerAddress;
    }

    /** The connector's private data. */
    public byte[] privateData() {
        return peer.privateData().clone();
    }

    public String peerAddress() {
        return peerAddress;
    }

    private void answerOnce() {
        if (answered) {
            throw new IllegalStateException("rdma-sim: the connection request from " + peerAddress + " was already answered");
        }
        answered = true;
    }

    /**
     * {@code rdma_accept}: takes {@code qp} (in RESET or INIT) through INIT, RTR and RTS, sends
     * {@code params.privateData()} back, and waits for the connector's confirmation.
     *
     * @throws IOException naming the peer when the handshake fails; the queue pair stays in INIT
     */
    public Connection accept(QueuePair qp, ConnectionParameters params) throws IOException {
        Objects.requireNonNull(qp, "qp");
        answerOnce();
        try {
            if (qp.device != device) {
                throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, qp.name() + " belongs to another device than the listener");
            }
            if (params.privateData().length > ConnectionParameters.MAX_ACCEPT_PRIVATE_DATA) {
                throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, "accept: " + params.privateData().length
                        + " bytes of private data, at most " + ConnectionParameters.MAX_ACCEPT_PRIVATE_DATA + " allowed");
            }
            qp.prepareForConnection();
        } catch (RuntimeException e) {
            refuse(e.getMessage());
            throw e;
        }
        PeerMemory memory;
        try {
            memory = device.openPeer(peer, peerAddress);
        } catch (IOException e) {
            refuse(e.getMessage());
            throw e;
        }
        Link link = new Link(device, channel, memory, peer, peerAddress, params);
        try {
            qp.toRtr(link);
        } catch (RuntimeException e) {
            link.down("the accept failed: " + e.getMessage(), null);
            refuse(e.getMessage());
            throw e;
        }
        try {
            CmMessage.write(channel, CmMessage.endpoint(CmMessage.REP, device.endpoint(qp, params)));
            CmMessage.Received m = CmMessage.read(new DataInputStream(socket.getInputStream()), peerAddress);
            if (m.kind() != CmMessage.RTU) {
                throw new IOException("rdma-sim: " + peerAddress + " answered the accept with handshake message kind " + m.kind());
            }
            socket.setSoTimeout(0);
        } catch (IOException e) {
            qp.abortConnect(link);
            link.down("the connector did not confirm", null);
            channel.close();
            throw new IOException("rdma-sim: " + peerAddress + " did not confirm the connection: " + e.getMessage(), e);
        }
        Connection c = new Connection(link, qp, peer.privateData(), peerAddress);
        qp.toRts(link);
        return c;
    }

    /** {@code rdma_reject}, with up to {@link ConnectionParameters#MAX_REJECT_PRIVATE_DATA} bytes for the connector. */
    public void reject(byte[] privateData) throws IOException {
        if (privateData.length > ConnectionParameters.MAX_REJECT_PRIVATE_DATA) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, "reject: " + privateData.length
                    + " bytes of private data, at most " + ConnectionParameters.MAX_REJECT_PRIVATE_DATA + " allowed");
        }
        answerOnce();
        try {
            CmMessage.write(channel, CmMessage.reject(privateData, "rejected by the application"));
        } finally {
            channel.close();
        }
    }

    private void refuse(String why) {
        try {
            CmMessage.write(channel, CmMessage.reject(new byte[0], why == null ? "refused" : why));
            channel.close();
        } catch (IOException ignored) {
            // the connector is gone
        }
    }
}
