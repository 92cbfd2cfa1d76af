package io.modemu.migration.tcp.testbed;

import io.modemu.migration.ChannelSettings;
import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationListener;
import io.modemu.migration.MigrationTransport;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Test transport {@code replay:NAME}: an incoming migration that reads the bytes registered under
 * NAME (a recorded stream, perhaps damaged) and throws away what the destination answers. Only
 * for destinations; one connection per listener.
 */
public final class ReplayTransport implements MigrationTransport {
    private final Map<String, byte[]> streams = new ConcurrentHashMap<>();

    public void register(String name, byte[] stream) {
        streams.put(name, stream);
    }

    @Override
    public String scheme() {
        return "replay";
    }

    @Override
    public String description() {
        return "replays a recorded migration stream (tests)";
    }

    @Override
    public MigrationChannel connect(String address, ChannelSettings settings) throws IOException {
        throw new IOException("replay: only for incoming migrations");
    }

    @Override
    public MigrationListener listen(String address, ChannelSettings settings) {
        byte[] stream = streams.get(address);
        if (stream == null) {
            throw new io.modemu.options.ConfigurationException("replay: no stream named '" + address + "'");
        }
        return new MigrationListener() {
            private volatile boolean given;
            private volatile boolean closed;

            @Override
            public String address() {
                return address;
            }

            @Override
            public MigrationChannel accept(Duration timeout) throws IOException {
                if (given || closed) {
                    throw new AsynchronousCloseException();
                }
                given = true;
                return new Replay(ByteBuffer.wrap(stream).asReadOnlyBuffer());
            }

            @Override
            public void close() {
                closed = true;
            }
        };
    }

    private static final class Replay implements MigrationChannel {
        private final ByteBuffer data;
        private volatile boolean closed;

        Replay(ByteBuffer data) {
            this.data = data;
        }

        @Override
        public String peer() {
            return "replay";
        }

        @Override
        public synchronized void write(ByteBuffer... srcs) throws IOException {
            if (closed) {
                throw new AsynchronousCloseException();
            }
            for (ByteBuffer b : srcs) {
                b.position(b.limit());
            }
        }

        @Override
        public synchronized int read(ByteBuffer dst, Duration timeout) throws IOException {
            if (closed) {
                throw new AsynchronousCloseException();
            }
            if (!data.hasRemaining()) {
                return -1;
            }
            int n = Math.min(dst.remaining(), data.remaining());
            ByteBuffer slice = data.slice(data.position(), n);
            dst.put(slice);
            data.position(data.position() + n);
            return n;
        }

        @Override
        public void close() {
            closed = true;
        }
    }
}
