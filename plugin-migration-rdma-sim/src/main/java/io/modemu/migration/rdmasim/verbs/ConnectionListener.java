package io.modemu.migration.rdmasim.verbs;

import java.io.DataInputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A listening endpoint ({@code rdma_listen}). {@link #accept} yields connection requests
 * ({@code RDMA_CM_EVENT_CONNECT_REQUEST}) carrying the connector's private data; the application
 * accepts or rejects each. A connection whose handshake is malformed or too slow is refused and
 * logged, and the listener keeps listening.
 */
public final class ConnectionListener implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ConnectionListener.class);
    static final Duration HANDSHAKE_TIMEOUT = Duration.ofSeconds(10);

    private final RdmaDevice device;
    private final ServerSocketChannel server;
    private final InetSocketAddress address;

    ConnectionListener(RdmaDevice device, ServerSocketChannel server) throws IOException {
        this.device = device;
        this.server = server;
        this.address = (InetSocketAddress) server.getLocalAddress();
    }

    /** The bound address, with the real port when port 0 was asked. */
    public InetSocketAddress localAddress() {
        return address;
    }

    /**
     * Waits up to {@code timeout} (forever if null) for the next connection request.
     *
     * @return the request, or null when the time ran out
     * @throws IOException when the listener is closed or broken
     */
    public ConnectRequest accept(Duration timeout) throws IOException {
        long deadline = timeout == null ? Long.MAX_VALUE : System.nanoTime() + timeout.toNanos();
        while (true) {
            long left = deadline == Long.MAX_VALUE ? 0 : deadline - System.nanoTime();
            if (deadline != Long.MAX_VALUE && left <= 0) {
                return null;
            }
            Socket s;
            try {
                server.socket().setSoTimeout(deadline == Long.MAX_VALUE ? 0 : (int) Math.max(1, Math.min(Integer.MAX_VALUE, left / 1_000_000)));
                s = server.socket().accept();
            } catch (SocketTimeoutException e) {
                return null;
            }
            SocketChannel ch = s.getChannel();
            String peer = s.getRemoteSocketAddress() instanceof InetSocketAddress a ? a.getHostString() + ":" + a.getPort()
                    : String.valueOf(s.getRemoteSocketAddress());
            try {
                s.setTcpNoDelay(true);
                s.setSoTimeout((int) HANDSHAKE_TIMEOUT.toMillis());
                CmMessage.Received m = CmMessage.read(new DataInputStream(s.getInputStream()), peer);
                if (m.kind() != CmMessage.REQ) {
                    throw new IOException("rdma-sim: " + peer + " opened with handshake message kind " + m.kind() + " instead of a connect request");
                }
                return new ConnectRequest(device, ch, s, m.endpoint(), peer);
            } catch (IOException | RuntimeException e) {
                log.warn("rdma-sim: refused a connection from {}: {}", peer, e.getMessage());
                try {
                    CmMessage.write(ch, CmMessage.reject(new byte[0], "malformed connect request: " + e.getMessage()));
                } catch (IOException ignored) {
                    // the peer is gone already
                }
                ch.close();
            }
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        device.forget(this);
    }

    @Override
    public String toString() {
        return "ConnectionListener[" + address + "]";
    }
}
