package io.modemu.migration.tcp;

import io.modemu.migration.MigrationChannel;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * One TCP connection of a migration. The socket is non-blocking and each direction waits on its own
 * selector, so a write that makes no progress for the io timeout fails instead of hanging, a read
 * waits only as long as its caller asks, and {@link #close()} from another thread wakes both.
 *
 * <p>Writes are gathering writes straight from the caller's buffers (slices of guest RAM): nothing
 * is copied in the JVM. One reader and one writer thread at a time; close from any thread.
 */
final class TcpChannel implements MigrationChannel {
    /** Socket buffer size asked for each direction ({@code -Dmodemu.migration.tcp.buffer=BYTES}, 0 = kernel autotuning). */
    static final int SOCKET_BUFFER = Integer.getInteger("modemu.migration.tcp.buffer", 0);

    private final SocketChannel socket;
    private final String peer;
    private final long ioTimeoutNanos;
    private final Selector readSelector;
    private final Selector writeSelector;
    private volatile boolean closed;

    TcpChannel(SocketChannel socket, String peer, Duration ioTimeout) throws IOException {
        this.socket = socket;
        this.peer = peer;
        this.ioTimeoutNanos = ioTimeout.toNanos();
        socket.configureBlocking(false);
        socket.setOption(StandardSocketOptions.TCP_NODELAY, true);
        if (SOCKET_BUFFER > 0) {
            socket.setOption(StandardSocketOptions.SO_SNDBUF, SOCKET_BUFFER);
            socket.setOption(StandardSocketOptions.SO_RCVBUF, SOCKET_BUFFER);
        }
        Selector r = Selector.open();
        Selector w;
        try {
            w = Selector.open();
        } catch (IOException e) {
            r.close();
            throw e;
        }
        this.readSelector = r;
        this.writeSelector = w;
        socket.register(readSelector, SelectionKey.OP_READ);
        socket.register(writeSelector, SelectionKey.OP_WRITE);
    }

    @Override
    public String peer() {
        return peer;
    }

    @Override
    public void write(ByteBuffer... srcs) throws IOException {
        int first = 0;
        long idleSince = System.nanoTime();
        while (true) {
            while (first < srcs.length && !srcs[first].hasRemaining()) {
                first++;
            }
            if (first == srcs.length) {
                return;
            }
            checkOpen();
            long n;
            try {
                n = socket.write(srcs, first, srcs.length - first);
            } catch (IOException e) {
                throw failure("sending", e);
            }
            if (n > 0) {
                idleSince = System.nanoTime();
                continue;
            }
            long left = ioTimeoutNanos - (System.nanoTime() - idleSince);
            if (left <= 0) {
                throw new SocketTimeoutException("tcp:" + peer + ": the peer took no data for " + TimeUnit.NANOSECONDS.toMillis(ioTimeoutNanos)
                        + " ms (it stopped reading)");
            }
            await(writeSelector, left);
        }
    }

    @Override
    public int read(ByteBuffer dst, Duration timeout) throws IOException {
        long deadline = timeout == null ? 0 : System.nanoTime() + timeout.toNanos();
        while (true) {
            checkOpen();
            int n;
            try {
                n = socket.read(dst);
            } catch (IOException e) {
                throw failure("receiving", e);
            }
            if (n != 0 || !dst.hasRemaining()) {
                return n;
            }
            long left = Long.MAX_VALUE;
            if (timeout != null) {
                left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new SocketTimeoutException("tcp:" + peer + ": no data from the peer for " + timeout.toMillis() + " ms (it stopped sending)");
                }
            }
            await(readSelector, left);
        }
    }

    private void await(Selector selector, long nanos) throws IOException {
        try {
            if (nanos == Long.MAX_VALUE) {
                selector.select();
            } else {
                selector.select(Math.max(1, TimeUnit.NANOSECONDS.toMillis(nanos + 999_999)));
            }
            selector.selectedKeys().clear();
        } catch (ClosedSelectorException e) {
            throw closedError();
        }
    }

    private void checkOpen() throws IOException {
        if (closed) {
            throw closedError();
        }
    }

    private IOException closedError() {
        return new AsynchronousCloseException() {
            private static final long serialVersionUID = 1L;

            @Override
            public String getMessage() {
                return "tcp:" + peer + ": connection closed";
            }
        };
    }

    private IOException failure(String what, IOException e) {
        if (closed) {
            return closedError();
        }
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return new IOException("tcp:" + peer + ": connection lost while " + what + ": " + m, e);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        readSelector.wakeup();
        writeSelector.wakeup();
        try {
            socket.close();
        } catch (IOException ignored) {
            // closing: nothing to report
        }
        closeQuietly(readSelector);
        closeQuietly(writeSelector);
    }

    private static void closeQuietly(Selector s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // closing: nothing to report
        }
    }

    @Override
    public String toString() {
        return "tcp:" + peer;
    }
}
