package io.modemu.migration.rdmasim;

import io.modemu.migration.MigrationChannel;
import io.modemu.migration.tcp.testbed.FaultyLink;
import io.modemu.migration.tcp.testbed.StreamHead;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The rdma-sim transport's {@link FaultyLink}, for the channels {@link RdmaSimFixture.InstrumentedTransport}
 * makes while it is armed. A cut is the fabric's own: {@link RdmaSimConnection#cutLink()} pulls the
 * cable under the source's connection (both ends see their queue pairs fail, no goodbye). The fabric
 * has no way to shorten or damage a message in flight (its links are reliable), so truncation and
 * corruption act on the engine's stream where the destination reads it: the destination reads the end
 * of the stream early, or bytes flipped; RAM written one-sided passes untouched, as it would.
 */
final class RdmaSimLink implements FaultyLink {
    private final String uri;
    private final RdmaSimFixture.InstrumentedTransport transport;
    private volatile long cutAfter = Long.MAX_VALUE;
    private volatile long truncateAfterConfiguration = -1;
    private volatile Tamper tamper;
    private volatile RdmaSimConnection source;
    private volatile boolean cut;
    private boolean outgoingTaken;
    private boolean incomingTaken;
    // the destination's reads
    private final StreamHead head = new StreamHead();
    private long position;
    private boolean ended;

    RdmaSimLink(String uri, RdmaSimFixture.InstrumentedTransport transport) {
        this.uri = uri;
        this.transport = transport;
    }

    @Override
    public String uri() {
        return uri;
    }

    @Override
    public RdmaSimLink cutAfter(long bytes) {
        this.cutAfter = bytes;
        return this;
    }

    @Override
    public void cutNow() {
        cut = true;
        RdmaSimConnection c = source;
        if (c != null) {
            c.cutLink();
        }
    }

    @Override
    public RdmaSimLink truncateAfterConfiguration(long bytes) {
        this.truncateAfterConfiguration = bytes;
        return this;
    }

    @Override
    public RdmaSimLink tamper(Tamper t) {
        this.tamper = t;
        return this;
    }

    /** Later channels are made without faults. */
    @Override
    public void close() {
        if (transport.armed == this) {
            transport.armed = null;
        }
    }

    /**
     * Whether a new channel goes through this link: the first outgoing one (the source's main channel)
     * and the first incoming one (the destination's end of it); later ones, as a next migration's, do not.
     */
    synchronized boolean take(boolean outgoing) {
        boolean first = outgoing ? !outgoingTaken : !incomingTaken;
        if (outgoing) {
            outgoingTaken = true;
        } else {
            incomingTaken = true;
        }
        return first;
    }

    private void attachSource(RdmaSimConnection c) {
        source = c;
        if (cut) {
            c.cutLink();
        }
    }

    /** The source is about to send {@code bytes} more after {@code sent}: the cable goes first if that crosses the cut. */
    private void beforeSend(long sent, long bytes) {
        if (sent + bytes > cutAfter) {
            cutNow();
        }
    }

    /** The destination reads: truncation and tampering applied to what the channel delivered. One reader at a time. */
    private int read(MigrationChannel in, ByteBuffer dst, Duration timeout) throws IOException {
        synchronized (head) {
            return readLocked(in, dst, timeout);
        }
    }

    private int readLocked(MigrationChannel in, ByteBuffer dst, Duration timeout) throws IOException {
        if (ended) {
            return -1;
        }
        int start = dst.position();
        int n = in.read(dst, timeout);
        if (n <= 0) {
            return n;
        }
        byte[] bytes = new byte[n];
        dst.get(start, bytes);
        head.feed(position, bytes, 0, n);
        long extra = truncateAfterConfiguration;
        long end = head.configurationEnd();
        if (extra >= 0 && end >= 0 && position + n >= end + extra) {
            n = (int) Math.max(0, end + extra - position);
            ended = true;
        }
        Tamper t = tamper;
        if (t != null) {
            t.apply(position, bytes, 0, n);
            dst.put(start, bytes, 0, n);
        }
        dst.position(start + n);
        position += n;
        return n == 0 ? -1 : n;
    }

    /** The source's end: counts the stream bytes it sends; the link cuts the cable under it. */
    static final class Outgoing implements MigrationChannel {
        private final RdmaSimChannel inner;
        private final RdmaSimLink link;
        private final AtomicLong sent = new AtomicLong();

        Outgoing(RdmaSimChannel inner, RdmaSimLink link) {
            this.inner = inner;
            this.link = link;
            if (link != null) {
                link.attachSource(inner.connection());
            }
        }

        /** Bytes of the engine's stream sent (RAM written one-sided not included). */
        long streamBytes() {
            return sent.get();
        }

        @Override
        public String peer() {
            return inner.peer();
        }

        @Override
        public void write(ByteBuffer... srcs) throws IOException {
            long n = 0;
            for (ByteBuffer b : srcs) {
                n += b.remaining();
            }
            if (link != null) {
                link.beforeSend(sent.get(), n);
            }
            inner.write(srcs);
            sent.addAndGet(n);
        }

        @Override
        public int read(ByteBuffer dst, Duration timeout) throws IOException {
            return inner.read(dst, timeout);
        }

        @Override
        public void close() {
            inner.close();
        }

        /** The one-sided role is the channel's own: RAM goes straight through the fabric. */
        @Override
        public <T> Optional<T> role(Class<T> role) {
            return inner.role(role);
        }
    }

    /** The destination's end: reads through the link's truncation and tampering. */
    static final class Incoming implements MigrationChannel {
        private final RdmaSimChannel inner;
        private final RdmaSimLink link;

        Incoming(RdmaSimChannel inner, RdmaSimLink link) {
            this.inner = inner;
            this.link = link;
        }

        RdmaSimConnection connection() {
            return inner.connection();
        }

        @Override
        public String peer() {
            return inner.peer();
        }

        @Override
        public void write(ByteBuffer... srcs) throws IOException {
            inner.write(srcs);
        }

        @Override
        public int read(ByteBuffer dst, Duration timeout) throws IOException {
            return link == null ? inner.read(dst, timeout) : link.read(inner, dst, timeout);
        }

        @Override
        public void close() {
            inner.close();
        }

        @Override
        public <T> Optional<T> role(Class<T> role) {
            return inner.role(role);
        }
    }
}
