package io.modemu.migration.rdmasim.verbs;

import java.util.concurrent.CompletionStage;

/**
 * An established connection ({@code RDMA_CM_EVENT_ESTABLISHED}) between a local queue pair, now in
 * RTS, and a peer's.
 */
public final class Connection implements AutoCloseable {
    private final Link link;
    private final QueuePair qp;
    private final byte[] peerPrivateData;
    private final String peerAddress;

    Connection(Link link, QueuePair qp, byte[] peerPrivateData, String peerAddress) {
        this.link = link;
        this.qp = qp;
        this.peerPrivateData = peerPrivateData.clone();
        this.peerAddress = peerAddress;
    }

    public QueuePair queuePair() {
        return qp;
    }

    /** The private data the peer sent with its connect or accept. */
    public byte[] peerPrivateData() {
        return peerPrivateData.clone();
    }

    /** The peer's socket address, for messages. */
    public String peerAddress() {
        return peerAddress;
    }

    /** The peer's queue pair number. */
    public int peerQueuePairNumber() {
        return link.remoteQpNumber;
    }

    public boolean isConnected() {
        return !link.isDown();
    }

    /**
     * Completes, with the reason, when the connection goes down for any reason
     * ({@code RDMA_CM_EVENT_DISCONNECTED}): either side disconnected, a queue pair went to ERROR, the
     * peer died, or the link was cut.
     */
    public CompletionStage<String> disconnected() {
        return link.downFuture();
    }

    /** {@code rdma_disconnect}: both queue pairs go to ERROR and flush what is outstanding. */
    public void disconnect() {
        qp.disconnect(link);
    }

    /**
     * Fault injection: cuts the link as a pulled cable would. Neither side says goodbye; both see
     * their first outstanding request fail with {@link WcStatus#RETRY_EXC_ERR} and go to ERROR.
     */
    public void cutLink() {
        link.cut();
    }

    /** Same as {@link #disconnect}. */
    @Override
    public void close() {
        disconnect();
    }

    @Override
    public String toString() {
        return "Connection[" + qp.name() + " ↔ " + link.peerName() + (isConnected() ? "" : ", down") + "]";
    }
}
