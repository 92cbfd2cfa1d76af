package io.modemu.migration.tcp;

import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationListener;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;

/** A listening TCP socket for {@code -incoming tcp:HOST:PORT}. One accepting thread; close from any thread. */
final class TcpListener implements MigrationListener {
    private final ServerSocketChannel server;
    private final Selector selector;
    private final String address;
    private final Duration ioTimeout;
    private volatile boolean closed;

    TcpListener(ServerSocketChannel server, Duration ioTimeout) throws IOException {
        this.server = server;
        this.ioTimeout = ioTimeout;
        server.configureBlocking(false);
        this.selector = Selector.open();
        server.register(selector, SelectionKey.OP_ACCEPT);
        InetSocketAddress a = (InetSocketAddress) server.getLocalAddress();
        String host = a.getAddress().getHostAddress();
        this.address = (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
    }

    @Override
    public String address() {
        return address;
    }

    @Override
    public MigrationChannel accept(Duration timeout) throws IOException {
        long deadline = timeout == null ? 0 : System.nanoTime() + timeout.toNanos();
        while (true) {
            if (closed) {
                throw new AsynchronousCloseException();
            }
            SocketChannel s = server.accept();
            if (s != null) {
                InetSocketAddress remote = (InetSocketAddress) s.getRemoteAddress();
                try {
                    return new TcpChannel(s, remote.getAddress().getHostAddress() + ":" + remote.getPort(), ioTimeout);
                } catch (IOException e) {
                    s.close();
                    throw e;
                }
            }
            try {
                if (timeout == null) {
                    selector.select();
                } else {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        throw new SocketTimeoutException("tcp:" + address + ": no connection within " + timeout.toMillis() + " ms");
                    }
                    selector.select(Math.max(1, left / 1_000_000));
                }
                selector.selectedKeys().clear();
            } catch (ClosedSelectorException e) {
                throw new AsynchronousCloseException();
            }
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        selector.wakeup();
        try {
            server.close();
        } catch (IOException ignored) {
            // closing
        }
        try {
            selector.close();
        } catch (IOException ignored) {
            // closing
        }
    }

    @Override
    public String toString() {
        return "tcp:" + address;
    }
}
