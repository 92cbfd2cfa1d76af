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
    /** A channel made while waiting for a source, so that accepting it does not include making one. */
    private ControlChannel spare;

    private RdmaSimAcceptor(RdmaDevice device, ConnectionListener listener, RdmaSimAddress address, Duration ioTimeout) {
        this.device = device;
        this.listener = listener;
        this.address = address;
        this.ioTimeout = ioTimeout;
    }

    /** Listens at {@code address} (port 0 picks one), with a channel ready for the first source. */
    public static RdmaSimAcceptor listen(RdmaSimAddress address, Duration ioTimeout) throws IOException {
        RdmaDevice device = RdmaDevice.open(address.fabric());
        RdmaSimAcceptor a;
        try {
            a = new RdmaSimAcceptor(device, device.listen(address.socketAddress()), address, ioTimeout);
        } catch (IOException | RuntimeException e) {
            device.close();
            throw e;
        }
        a.keepSpare(a.takeSpareOrNew());
        return a;
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
            ControlChannel ch = takeSpareOrNew();
            ConnectRequest r;
            try {
                r = listener.accept(timeout);
            } catch (IOException | RuntimeException e) {
                keepSpare(ch);
                throw e;
            }
            if (r == null) {
                keepSpare(ch);
                throw new SocketTimeoutException("rdma-sim: no source connected to " + address() + " within " + timeout.toMillis() + " ms");
            }
            Capabilities caps;
            try {
                caps = Capabilities.decode(r.privateData(), r.peerAddress());
            } catch (IOException e) {
                log.warn("{}; rejected", e.getMessage());
                keepSpare(ch);
                r.reject(new byte[0]);
                continue;
            }
            long t0 = System.nanoTime();
            try {
                Connection c = r.accept(ch.queuePair(), ConnectionParameters.withPrivateData(caps.encode()));
                ch.attach(c, r.peerAddress());
                log.debug("rdma-sim: accepted {} in {} us", r.peerAddress(), (System.nanoTime() - t0) / 1000);
                return RdmaSimConnection.incoming(ch, caps.pinAll(), ioTimeout);
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
        }
    }

    /** A channel for the next connection: the spare one, or a new one (each holds a use of the device). */
    private ControlChannel takeSpareOrNew() {
        synchronized (this) {
            if (spare != null) {
                ControlChannel ch = spare;
                spare = null;
                return ch;
            }
            users++;
        }
        try {
            return new ControlChannel(device, this::release);
        } catch (RuntimeException e) {
            release();
            throw e;
        }
    }

    private void keepSpare(ControlChannel ch) {
        boolean extra;
        synchronized (this) {
            extra = spare != null || !listenerOpen;
            if (!extra) {
                spare = ch;
            }
        }
        if (extra) {
            ch.close();
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
        ControlChannel unused;
        synchronized (this) {
            if (!listenerOpen) {
                return;
            }
            listenerOpen = false;
            unused = spare;
            spare = null;
        }
        if (unused != null) {
            unused.close();
        }
        try {
            listener.close();
        } finally {
            release();
        }
    }
}
