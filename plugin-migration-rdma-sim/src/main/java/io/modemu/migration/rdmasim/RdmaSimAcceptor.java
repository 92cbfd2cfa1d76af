package io.modemu.migration.rdmasim;

import io.modemu.migration.rdmasim.verbs.ConnectRequest;
import io.modemu.migration.rdmasim.verbs.Connection;
import io.modemu.migration.rdmasim.verbs.ConnectionListener;
import io.modemu.migration.rdmasim.verbs.ConnectionParameters;
import io.modemu.migration.rdmasim.verbs.RdmaDevice;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The destination's listening endpoint: one device, shared by the listener and every connection it
 * accepted, and closed when the last of them is.
 */
public final class RdmaSimAcceptor implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RdmaSimAcceptor.class);

    private final RdmaDevice device;
    private final ConnectionListener listener;
    private final RdmaSimAddress address;
    private final Duration ioTimeout;
    private int users = 1;
    private boolean listenerOpen = true;

    private RdmaSimAcceptor(RdmaDevice device, ConnectionListener listener, RdmaSimAddress address, Duration ioTimeout) {
        this.device = device;
        this.listener = listener;
        this.address = address;
        this.ioTimeout = ioTimeout;
    }

    /** Listens at {@code address} (port 0 picks one). */
    public static RdmaSimAcceptor listen(RdmaSimAddress address, Duration ioTimeout) throws IOException {
        RdmaDevice device = RdmaDevice.open(address.fabric());
        try {
            return new RdmaSimAcceptor(device, device.listen(address.socketAddress()), address, ioTimeout);
        } catch (IOException | RuntimeException e) {
            device.close();
            throw e;
        }
    }

    /** The bound {@code HOST:PORT}, with the real port. */
    public String address() {
        return address.hostPort(listener.localAddress().getPort());
    }

    /**
     * Waits up to {@code timeout} (forever if null) for a source, checks its capabilities and accepts it.
     *
     * @throws SocketTimeoutException when none came in time
     */
    public RdmaSimConnection accept(Duration timeout) throws IOException {
        while (true) {
            ConnectRequest r = listener.accept(timeout);
            if (r == null) {
                throw new SocketTimeoutException("rdma-sim: no source connected to " + address() + " within " + timeout.toMillis() + " ms");
            }
            Capabilities caps;
            try {
                caps = Capabilities.decode(r.privateData(), r.peerAddress());
            } catch (IOException e) {
                log.warn("{}; rejected", e.getMessage());
                r.reject(new byte[0]);
                continue;
            }
            synchronized (this) {
                users++;
            }
            long t0 = System.nanoTime();
            ControlChannel ch = null;
            try {
                ch = new ControlChannel(device, this::release);
                Connection c = r.accept(ch.queuePair(), ConnectionParameters.withPrivateData(caps.encode()));
                ch.attach(c, r.peerAddress());
                log.debug("rdma-sim: accepted {} in {} us", r.peerAddress(), (System.nanoTime() - t0) / 1000);
                return RdmaSimConnection.incoming(ch, caps.pinAll(), ioTimeout);
            } catch (IOException | RuntimeException e) {
                if (ch != null) {
                    ch.close();
                } else {
                    release();
                }
                throw e;
            }
        }
    }

    private void release() {
        boolean last;
        synchronized (this) {
            last = --users == 0;
        }
        if (last) {
            device.close();
        }
    }

    /** Stops listening; the device goes once the accepted connections are closed too. Idempotent. */
    @Override
    public void close() throws IOException {
        synchronized (this) {
            if (!listenerOpen) {
                return;
            }
            listenerOpen = false;
        }
        try {
            listener.close();
        } finally {
            release();
        }
    }
}
