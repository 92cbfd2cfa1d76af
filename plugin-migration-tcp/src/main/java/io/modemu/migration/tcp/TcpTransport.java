package io.modemu.migration.tcp;

import io.modemu.migration.ChannelSettings;
import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationListener;
import io.modemu.migration.MigrationTransport;
import java.io.IOException;
import java.util.Optional;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.channels.UnresolvedAddressException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Migration transport {@code tcp:HOST:PORT}: one TCP connection per stream, non-blocking sockets
 * with per-direction timeouts, pages written from guest RAM to the socket with no copy in the JVM.
 * Stateless and thread-safe.
 */
public final class TcpTransport implements MigrationTransport {
    private static final Logger log = LoggerFactory.getLogger(TcpTransport.class);

    /** Made by the plugin host when it loads the plugin, long before a migration. */
    public TcpTransport() {
        TcpWarmup.startOnce(this);
    }

    @Override
    public String scheme() {
        return "tcp";
    }

    @Override
    public String description() {
        return "live migration over TCP (tcp:HOST:PORT), parallel connections for multifd";
    }

    @Override
    public MigrationChannel connect(String address, ChannelSettings settings) throws IOException {
        TcpAddress a = TcpAddress.parse(address, false);
        InetSocketAddress target;
        try {
            target = a.resolve();
        } catch (IllegalArgumentException e) {
            throw new IOException("tcp:" + a + ": " + e.getMessage(), e);
        }
        if (target.isUnresolved()) {
            throw new IOException("tcp:" + a + ": unknown host '" + a.host() + "'");
        }
        SocketChannel s = SocketChannel.open();
        try {
            if (TcpChannel.SOCKET_BUFFER > 0) {
                // before connecting, so that the window scale is negotiated for it
                s.setOption(StandardSocketOptions.SO_RCVBUF, TcpChannel.SOCKET_BUFFER);
                s.setOption(StandardSocketOptions.SO_SNDBUF, TcpChannel.SOCKET_BUFFER);
            }
            s.socket().connect(target, (int) Math.min(Integer.MAX_VALUE, settings.connectTimeout().toMillis()));
            log.debug("connected to tcp:{}", a);
            return new TcpChannel(s, a.toString(), settings.ioTimeout());
        } catch (ClosedByInterruptException e) {
            close(s);
            throw new IOException("tcp:" + a + ": connection attempt interrupted", e);
        } catch (java.net.SocketTimeoutException e) {
            close(s);
            throw new IOException("tcp:" + a + ": no answer within " + settings.connectTimeout().toMillis() + " ms", e);
        } catch (IOException | UnresolvedAddressException e) {
            close(s);
            throw new IOException("tcp:" + a + ": cannot connect: " + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()), e);
        }
    }

    /** Loopback on an ephemeral port: the engine warms up its per-page code over this transport. */
    @Override
    public Optional<String> loopbackAddress() {
        return Optional.of("127.0.0.1:0");
    }

    @Override
    public MigrationListener listen(String address, ChannelSettings settings) throws IOException {
        TcpAddress a = TcpAddress.parse(address, true);
        ServerSocketChannel server = ServerSocketChannel.open();
        try {
            server.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            if (TcpChannel.SOCKET_BUFFER > 0) {
                server.setOption(StandardSocketOptions.SO_RCVBUF, TcpChannel.SOCKET_BUFFER);
            }
            server.bind(a.resolve(), 16);
            TcpListener l = new TcpListener(server, settings.ioTimeout());
            log.debug("listening on tcp:{}", l.address());
            return l;
        } catch (IOException | RuntimeException e) {
            close(server);
            if (e instanceof RuntimeException re && !(e instanceof UnresolvedAddressException)) {
                throw re;
            }
            throw new IOException("tcp:" + a + ": cannot listen: " + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()), e);
        }
    }

    private static void close(java.io.Closeable c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // already failing
        }
    }
}
