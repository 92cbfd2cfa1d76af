package io.modemu.migration.testkit;

import io.modemu.migration.ChannelSettings;
import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationListener;
import io.modemu.migration.MigrationTransport;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Test transport {@code scripted:NAME}, both ends played from bytes:
 * <ul>
 * <li>a destination ({@link #listen}) that hands out one connection per recorded channel of the
 * streams registered under NAME (main first, then data channels), reads them and throws the replies
 * away; a further accept fails;</li>
 * <li>a fake destination for a source ({@link #connect}): every connection answers with the bytes
 * registered under NAME (the first connection; the others answer nothing) and then the end of the
 * stream, and records what the source wrote.</li>
 * </ul>
 *
 * <p>Shared with the transports' tests through the platform's test-jar (for example
 * migration-tcp's {@code StreamCorruptionTest} replays damaged streams into destinations with it).
 */
public final class ScriptedTransport implements MigrationTransport {
    private final Map<String, List<byte[]>> incoming = new ConcurrentHashMap<>();
    private final Map<String, byte[]> replies = new ConcurrentHashMap<>();
    private final List<Recorder> recorders = new CopyOnWriteArrayList<>();

    /** Streams a destination listening on {@code scripted:NAME} reads: the main channel, then data channels. */
    public void incoming(String name, List<byte[]> channels) {
        incoming.put(name, channels);
    }

    /** What a destination at {@code scripted:NAME} answers a source. */
    public void replies(String name, byte[] bytes) {
        replies.put(name, bytes);
        recorders.clear();
    }

    /** What the source wrote on each connection to {@code scripted:...} since the last {@link #replies}, in connection order. */
    public List<byte[]> recorded() {
        List<byte[]> out = new ArrayList<>();
        for (Recorder r : recorders) {
            out.add(r.written());
        }
        return out;
    }

    public void forget(String name) {
        incoming.remove(name);
        replies.remove(name);
    }

    @Override
    public String scheme() {
        return "scripted";
    }

    @Override
    public String description() {
        return "plays either end of a migration from bytes (tests)";
    }

    @Override
    public MigrationChannel connect(String address, ChannelSettings settings) throws IOException {
        byte[] answer = replies.get(address);
        if (answer == null) {
            throw new IOException("scripted:" + address + ": nothing registered");
        }
        Recorder r = new Recorder(recorders.isEmpty() ? answer : new byte[0], true);
        recorders.add(r);
        return r;
    }

    @Override
    public MigrationListener listen(String address, ChannelSettings settings) {
        List<byte[]> streams = incoming.get(address);
        if (streams == null) {
            throw new io.modemu.options.ConfigurationException("scripted: no stream named '" + address + "'");
        }
        return new MigrationListener() {
            private int next;
            private volatile boolean closed;

            @Override
            public String address() {
                return address;
            }

            @Override
            public synchronized MigrationChannel accept(Duration timeout) throws IOException {
                if (closed || next >= streams.size()) {
                    throw new AsynchronousCloseException();
                }
                return new Recorder(streams.get(next++), false);
            }

            @Override
            public void close() {
                closed = true;
            }
        };
    }

    /**
     * One connection: reads the scripted bytes, then the end of the stream. A source's connection keeps
     * what the source wrote; a destination's throws its answers away.
     */
    private static final class Recorder implements MigrationChannel {
        private final ByteBuffer answer;
        private final boolean keep;
        private final ByteArrayOutputStream written = new ByteArrayOutputStream();
        private volatile boolean closed;

        Recorder(byte[] answer, boolean keep) {
            this.answer = ByteBuffer.wrap(answer);
            this.keep = keep;
        }

        synchronized byte[] written() {
            return written.toByteArray();
        }

        @Override
        public String peer() {
            return "scripted";
        }

        @Override
        public void write(ByteBuffer... srcs) throws IOException {
            if (closed) {
                throw new AsynchronousCloseException();
            }
            synchronized (this) {
                for (ByteBuffer b : srcs) {
                    if (!keep) {
                        b.position(b.limit());
                        continue;
                    }
                    byte[] chunk = new byte[b.remaining()];
                    b.get(chunk);
                    written.write(chunk, 0, chunk.length);
                }
            }
        }

        @Override
        public int read(ByteBuffer dst, Duration timeout) throws IOException {
            if (closed) {
                throw new AsynchronousCloseException();
            }
            synchronized (this) {
                if (!answer.hasRemaining()) {
                    return -1;
                }
                int n = Math.min(dst.remaining(), answer.remaining());
                dst.put(answer.slice(answer.position(), n));
                answer.position(answer.position() + n);
                return n;
            }
        }

        @Override
        public void close() {
            closed = true;
        }
    }
}
