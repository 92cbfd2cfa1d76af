package io.modemu.migration;

import io.modemu.machine.RamBlock;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Test transport {@code pipe:NAME}: in-memory connections between two machines of one JVM. With
 * {@code oneSided}, its channels also take the {@link RemoteRamWriter} / {@link RemoteRamTarget}
 * roles and copy pages straight from the source's RAM into the destination's, as an RDMA transport
 * would — the test of that part of the SPI.
 */
final class PipeTransport implements MigrationTransport {
    private final Map<String, LinkedBlockingQueue<Pipe>> listeners = new ConcurrentHashMap<>();
    private final Map<String, List<RamBlock>> exposed = new ConcurrentHashMap<>();
    private final boolean oneSided;

    /** Whether it says the destination's RAM must be a shared file mapping, and checks it when RAM is exposed. */
    private final boolean requireShared;

    /** How long {@link #connect} takes before it reaches the listener (a slow network's connect; interruptible). */
    private volatile Duration connectDelay = Duration.ZERO;

    PipeTransport(boolean oneSided) {
        this(oneSided, false);
    }

    PipeTransport(boolean oneSided, boolean requireShared) {
        this.oneSided = oneSided;
        this.requireShared = requireShared;
    }

    /** Makes every later connect take {@code delay} first. */
    PipeTransport connectDelay(Duration delay) {
        this.connectDelay = delay;
        return this;
    }

    @Override
    public boolean destinationRamMustBeShared() {
        return requireShared;
    }

    @Override
    public String scheme() {
        return "pipe";
    }

    @Override
    public String description() {
        return "in-memory migration between machines of one JVM (tests)";
    }

    @Override
    public MigrationChannel connect(String address, ChannelSettings settings) throws IOException {
        if (!connectDelay.isZero()) {
            try {
                Thread.sleep(connectDelay);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("pipe:" + address + ": connect interrupted");
            }
        }
        LinkedBlockingQueue<Pipe> q = listeners.get(address);
        if (q == null) {
            throw new IOException("pipe:" + address + ": nobody listens");
        }
        Ring up = new Ring();
        Ring down = new Ring();
        Pipe source = new Pipe(address, down, up, settings.ioTimeout());
        q.add(new Pipe(address, up, down, settings.ioTimeout()));
        return source;
    }

    @Override
    public MigrationListener listen(String address, ChannelSettings settings) {
        LinkedBlockingQueue<Pipe> q = new LinkedBlockingQueue<>();
        if (listeners.putIfAbsent(address, q) != null) {
            throw new io.modemu.options.ConfigurationException("pipe:" + address + " is taken");
        }
        return new MigrationListener() {
            @Override
            public String address() {
                return address;
            }

            @Override
            public MigrationChannel accept(Duration timeout) throws IOException {
                try {
                    Pipe p = timeout == null ? q.take() : q.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
                    if (p == null) {
                        throw new SocketTimeoutException("pipe:" + address + ": nobody connected");
                    }
                    if (p.in == null) {
                        throw new AsynchronousCloseException();
                    }
                    return p;
                } catch (InterruptedException e) {
                    throw new AsynchronousCloseException();
                }
            }

            @Override
            public void close() {
                listeners.remove(address, q);
                q.add(new Pipe(address, null, null, Duration.ZERO));
            }
        };
    }

    /** One direction: a bounded byte ring. */
    private static final class Ring {
        final ReentrantLock lock = new ReentrantLock();
        final Condition changed = lock.newCondition();
        final ByteBuffer buf = ByteBuffer.allocate(256 << 10);
        boolean closed;

        Ring() {
            buf.flip();
        }
    }

    private final class Pipe implements MigrationChannel, RemoteRamWriter, RemoteRamTarget {
        final String name;
        final Ring in;
        final Ring out;
        final Duration ioTimeout;
        String exposedToken;
        List<RamBlock> source;
        List<RamBlock> target;

        Pipe(String name, Ring in, Ring out, Duration ioTimeout) {
            this.name = name;
            this.in = in;
            this.out = out;
            this.ioTimeout = ioTimeout;
        }

        @Override
        public String peer() {
            return "pipe:" + name;
        }

        @Override
        public void write(ByteBuffer... srcs) throws IOException {
            for (ByteBuffer src : srcs) {
                while (src.hasRemaining()) {
                    out.lock.lock();
                    try {
                        long deadline = System.nanoTime() + ioTimeout.toNanos();
                        while (!out.closed && out.buf.limit() == out.buf.capacity() && out.buf.position() == 0) {
                            long left = deadline - System.nanoTime();
                            if (left <= 0) {
                                throw new SocketTimeoutException(peer() + ": the peer took no data");
                            }
                            out.changed.awaitNanos(left);
                        }
                        if (out.closed) {
                            throw new AsynchronousCloseException();
                        }
                        out.buf.compact();
                        int n = Math.min(out.buf.remaining(), src.remaining());
                        out.buf.put(src.slice(src.position(), n));
                        src.position(src.position() + n);
                        out.buf.flip();
                        out.changed.signalAll();
                    } catch (InterruptedException e) {
                        throw new AsynchronousCloseException();
                    } finally {
                        out.lock.unlock();
                    }
                }
            }
        }

        @Override
        public int read(ByteBuffer dst, Duration timeout) throws IOException {
            in.lock.lock();
            try {
                long deadline = timeout == null ? 0 : System.nanoTime() + timeout.toNanos();
                while (!in.buf.hasRemaining()) {
                    if (in.closed) {
                        return in.buf.hasRemaining() ? 0 : -1;
                    }
                    if (timeout == null) {
                        in.changed.await();
                    } else {
                        long left = deadline - System.nanoTime();
                        if (left <= 0) {
                            throw new SocketTimeoutException(peer() + ": no data");
                        }
                        in.changed.awaitNanos(left);
                    }
                }
                int n = Math.min(in.buf.remaining(), dst.remaining());
                dst.put(in.buf.slice(in.buf.position(), n));
                in.buf.position(in.buf.position() + n);
                in.changed.signalAll();
                return n;
            } catch (InterruptedException e) {
                throw new AsynchronousCloseException();
            } finally {
                in.lock.unlock();
            }
        }

        @Override
        public void close() {
            for (Ring r : new Ring[] {in, out}) {
                r.lock.lock();
                try {
                    r.closed = true;
                    r.changed.signalAll();
                } finally {
                    r.lock.unlock();
                }
            }
        }

        @Override
        public <T> java.util.Optional<T> role(Class<T> role) {
            return oneSided ? MigrationChannel.super.role(role) : java.util.Optional.empty();
        }

        // ---- one-sided RAM ----

        @Override
        public byte[] expose(List<RamBlock> blocks) {
            if (requireShared && !blocks.getFirst().segment().isMapped()) {
                throw new IllegalStateException("pipe: one-sided writes need the destination's RAM to be a shared file mapping");
            }
            exposedToken = UUID.randomUUID().toString();
            exposed.put(exposedToken, blocks);
            return exposedToken.getBytes(StandardCharsets.UTF_8);
        }

        @Override
        public void withdraw() {
            if (exposedToken != null) {
                exposed.remove(exposedToken);
            }
        }

        @Override
        public void open(List<RamBlock> blocks, byte[] token) throws IOException {
            source = blocks;
            target = exposed.get(new String(token, StandardCharsets.UTF_8));
            if (target == null) {
                throw new IOException("pipe: the destination exposed no RAM under that token");
            }
        }

        @Override
        public void write(int blockIndex, long offset, long length) throws IOException {
            MemorySegment from = source.get(blockIndex).segment().asSlice(offset, length);
            MemorySegment to = target.get(blockIndex).segment();
            if (!exposed.containsValue(target)) {
                throw new IOException("pipe: remote access error (the destination withdrew its RAM)");
            }
            MemorySegment.copy(from, 0, to, offset, length);
        }

        @Override
        public void flush() {
            // copies are synchronous
        }
    }
}
