package io.modemu.migration.rdmasim;

import io.modemu.machine.RamBlock;
import io.modemu.migration.rdmasim.verbs.ConnectionParameters;
import io.modemu.migration.rdmasim.verbs.RdmaDevice;
import io.modemu.migration.rdmasim.verbs.VerbsException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;

/**
 * One rdma-sim migration connection, independent of the platform's transport SPI: the byte stream
 * over SEND/RECV ({@link ControlChannel}) and, on the source, one-sided RAM writes
 * ({@link RamImporter}) or, on the destination, exposed guest RAM ({@link RamExporter}). The SPI
 * adapters ({@link RdmaSimTransport}) delegate to it.
 */
public final class RdmaSimConnection implements AutoCloseable {
    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(RdmaSimConnection.class);
    private final ControlChannel channel;
    private final boolean outgoing;
    private final boolean pinAll;
    private final Duration ioTimeout;
    private RamImporter importer;
    private RamExporter exporter;

    private RdmaSimConnection(ControlChannel channel, boolean outgoing, boolean pinAll, Duration ioTimeout) {
        this.channel = channel;
        this.outgoing = outgoing;
        this.pinAll = pinAll;
        this.ioTimeout = ioTimeout;
    }

    /**
     * Connects to a destination listening at {@code address}, with a device of its own.
     *
     * @throws IOException naming the address when the destination cannot be reached or refuses
     */
    public static RdmaSimConnection connect(RdmaSimAddress address, Duration connectTimeout, Duration ioTimeout) throws IOException {
        long t0 = System.nanoTime();
        RdmaDevice device = RdmaDevice.open(address.fabric());
        ControlChannel ch = null;
        try {
            ch = new ControlChannel(device, device::close);
            ConnectionParameters params = ConnectionParameters.withPrivateData(new Capabilities(address.pinAll()).encode());
            String peer = address.hostPort(address.port());
            var c = device.connect(address.socketAddress(), ch.queuePair(), params, connectTimeout);
            Capabilities agreed = Capabilities.decode(c.peerPrivateData(), peer);
            ch.attach(c, peer);
            log.debug("rdma-sim: connected to {} in {} us", peer, (System.nanoTime() - t0) / 1000);
            return new RdmaSimConnection(ch, true, agreed.pinAll(), ioTimeout);
        } catch (IOException | RuntimeException e) {
            if (ch != null) {
                ch.close();
            } else {
                device.close();
            }
            if (Thread.currentThread().isInterrupted()) {
                throw new InterruptedIOException("rdma-sim: connecting to " + address.hostPort(address.port()) + " was interrupted");
            }
            if (e instanceof VerbsException v) {
                throw new IOException(v.getMessage(), v);
            }
            throw e;
        }
    }

    /** Accepting side. */
    static RdmaSimConnection incoming(ControlChannel channel, boolean pinAll, Duration ioTimeout) {
        return new RdmaSimConnection(channel, false, pinAll, ioTimeout);
    }

    public String peer() {
        return channel.peer();
    }

    public boolean isOutgoing() {
        return outgoing;
    }

    /** Whether the source asked for pin-all registration. */
    public boolean pinAll() {
        return pinAll;
    }

    // ---- stream ----

    /** Writes every remaining byte of {@code srcs}; fails after the io timeout without progress. */
    public void write(ByteBuffer... srcs) throws IOException {
        channel.write(srcs, ioTimeout);
    }

    /** Reads at least one byte; -1 at the end of the stream; waits at most {@code timeout} (null: forever). */
    public int read(ByteBuffer dst, Duration timeout) throws IOException {
        return channel.read(dst, timeout);
    }

    // ---- source: one-sided RAM writes ----

    /** Source: prepares one-sided writes into the guest RAM the destination exposed in {@code token}. */
    public synchronized void openRam(List<RamBlock> blocks, byte[] token) throws IOException {
        if (!outgoing) {
            throw new IllegalStateException("rdma-sim: RAM writes go from the source");
        }
        long t0 = System.nanoTime();
        RamImporter i = new RamImporter(channel, ioTimeout);
        channel.setHandler(i);
        i.open(blocks, token);
        importer = i;
        log.debug("rdma-sim: ready to write guest RAM into {} ({}) in {} us", peer(), pinAll ? "pinned all" : "chunks on demand",
                (System.nanoTime() - t0) / 1000);
    }

    /** Source: writes a page run one-sided (may return before it landed). */
    public void writeRam(int blockIndex, long offset, long length) throws IOException {
        importer().write(blockIndex, offset, length);
    }

    /** Source: waits until every earlier {@link #writeRam} landed in the destination's RAM. */
    public void flushRam() throws IOException {
        importer().flush();
    }

    private synchronized RamImporter importer() {
        if (importer == null) {
            throw new IllegalStateException("rdma-sim: RAM writes before openRam");
        }
        return importer;
    }

    // ---- destination: exposed guest RAM ----

    /** Destination: registers guest RAM for the source's writes; returns the token for {@link #openRam}. */
    public synchronized byte[] exposeRam(List<RamBlock> blocks) throws IOException {
        if (outgoing) {
            throw new IllegalStateException("rdma-sim: guest RAM is exposed by the destination");
        }
        long t0 = System.nanoTime();
        RamExporter e = new RamExporter(channel, pinAll);
        channel.setHandler(e);
        byte[] token = e.expose(blocks);
        exporter = e;
        log.debug("rdma-sim: guest RAM exposed to {} in {} us", peer(), (System.nanoTime() - t0) / 1000);
        return token;
    }

    /** Destination: deregisters guest RAM; once this returns no remote write lands in it. Idempotent. */
    public synchronized void withdrawRam() {
        if (exporter != null) {
            exporter.withdraw();
        }
    }

    /** Destination: chunks registered on demand so far (0 with pin-all). */
    synchronized int chunkRegistrations() {
        return exporter == null ? 0 : exporter.registrations();
    }

    /** Destination: memory regions over guest RAM now, and the bytes they expose. */
    synchronized long[] ramRegions() {
        return exporter == null ? new long[2] : exporter.regionsAndBytes();
    }

    /** The transport's channel (tests send malformed transport messages through it). */
    ControlChannel channel() {
        return channel;
    }

    /** Fault injection for tests: the link is cut as by a pulled cable. */
    void cutLink() {
        channel.cutLink();
    }

    /** Closes the connection and releases its device resources. Any thread; idempotent. */
    @Override
    public void close() {
        synchronized (this) {
            if (exporter != null) {
                exporter.withdraw();
            }
        }
        // the source's RAM regions live in the channel's protection domain: they go first
        channel.closeWith(() -> {
            RamImporter i;
            synchronized (this) {
                i = importer;
            }
            if (i != null) {
                i.close();
            }
        });
    }

    @Override
    public String toString() {
        return "rdma-sim connection " + (outgoing ? "to " : "from ") + peer();
    }
}
