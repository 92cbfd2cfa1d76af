package io.modemu.migration.tcp.testbed;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A TCP proxy between a migration source and its destination that injects faults on the first
 * connection (the main channel): cut both ways after a number of bytes or on demand (connections
 * reset), end the forward direction early (a truncated stream), stop reading from the source (a
 * stalled peer), or rewrite bytes on their way ({@link FaultyLink.Tamper}). Further connections (data
 * channels) are forwarded untouched. The tcp transport's {@link FaultyLink}. Test code: blocking
 * sockets, two threads per connection.
 */
public final class FaultyProxy implements FaultyLink {
    private final ServerSocket server;
    private final InetSocketAddress target;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private final AtomicInteger connections = new AtomicInteger();
    private volatile long cutAfter = Long.MAX_VALUE;
    private volatile long truncateAfterConfiguration = -1;
    private volatile long stallAfter = Long.MAX_VALUE;
    private volatile Tamper tamper;
    private volatile java.io.ByteArrayOutputStream recording;
    private volatile boolean cut;

    public FaultyProxy(String targetHostPort) throws IOException {
        int colon = targetHostPort.lastIndexOf(':');
        this.target = new InetSocketAddress(targetHostPort.substring(0, colon), Integer.parseInt(targetHostPort.substring(colon + 1)));
        this.server = new ServerSocket(0, 16, InetAddress.getLoopbackAddress());
        Thread.ofPlatform().name("proxy-accept").daemon(true).start(this::acceptLoop);
    }

    /** The proxy's address as a migration URI. */
    @Override
    public String uri() {
        return "tcp:127.0.0.1:" + server.getLocalPort();
    }

    /** Resets both connections of every channel once {@code bytes} of the main channel were forwarded. */
    @Override
    public FaultyProxy cutAfter(long bytes) {
        this.cutAfter = bytes;
        return this;
    }

    /**
     * Forwards the main channel up to {@code bytes} after the configuration, then ends that direction
     * (the destination reads the end of the stream); replies still flow back.
     */
    @Override
    public FaultyProxy truncateAfterConfiguration(long bytes) {
        this.truncateAfterConfiguration = bytes;
        return this;
    }

    /** Stops reading from the source once {@code bytes} were forwarded, and holds every connection open. */
    public FaultyProxy stallAfter(long bytes) {
        this.stallAfter = bytes;
        return this;
    }

    @Override
    public FaultyProxy tamper(Tamper t) {
        this.tamper = t;
        return this;
    }

    /** Keeps a copy of everything the main channel forwards to the destination. */
    public FaultyProxy record() {
        this.recording = new java.io.ByteArrayOutputStream();
        return this;
    }

    /** What {@link #record()} captured so far. */
    public byte[] recorded() {
        synchronized (recording) {
            return recording.toByteArray();
        }
    }

    /** Resets every connection now (a destination that died). */
    @Override
    public void cutNow() {
        cut = true;
        for (Socket s : sockets) {
            reset(s);
        }
    }

    private void acceptLoop() {
        while (!server.isClosed()) {
            try {
                Socket in = server.accept();
                Socket out = new Socket();
                out.connect(target, 5_000);
                sockets.add(in);
                sockets.add(out);
                if (cut) {
                    reset(in);
                    reset(out);
                    continue;
                }
                boolean main = connections.getAndIncrement() == 0;
                Thread.ofPlatform().name("proxy-fwd").daemon(true).start(() -> forward(in, out, main));
                Thread.ofPlatform().name("proxy-back").daemon(true).start(() -> back(out, in));
            } catch (IOException e) {
                return;
            }
        }
    }

    private void forward(Socket from, Socket to, boolean main) {
        byte[] buf = new byte[64 << 10];
        long pos = 0;
        StreamHead head = new StreamHead();
        try (InputStream i = from.getInputStream()) {
            OutputStream o = to.getOutputStream();
            while (true) {
                int want = buf.length;
                if (main) {
                    long truncateAt = truncateAt(head);
                    long limit = Math.min(cutAfter, Math.min(truncateAt, stallAfter));
                    if (pos >= limit) {
                        if (pos >= cutAfter) {
                            cutNow();
                            return;
                        }
                        if (pos >= truncateAt) {
                            to.shutdownOutput();
                            i.transferTo(OutputStream.nullOutputStream());
                            return;
                        }
                        Thread.sleep(Long.MAX_VALUE);
                    }
                    want = (int) Math.min(buf.length, limit - pos);
                }
                int n = i.read(buf, 0, want);
                if (n < 0) {
                    to.shutdownOutput();
                    return;
                }
                if (main) {
                    head.feed(pos, buf, 0, n);
                    // the configuration's length, just learnt, may put the truncation inside what was read
                    n = (int) Math.min(n, truncateAt(head) - pos);
                    Tamper t = tamper;
                    if (t != null) {
                        t.apply(pos, buf, 0, n);
                    }
                    java.io.ByteArrayOutputStream rec = recording;
                    if (rec != null) {
                        synchronized (rec) {
                            rec.write(buf, 0, n);
                        }
                    }
                }
                o.write(buf, 0, n);
                pos += n;
            }
        } catch (IOException | InterruptedException e) {
            close(to);
        }
    }

    private long truncateAt(StreamHead head) {
        long extra = truncateAfterConfiguration;
        long end = head.configurationEnd();
        return extra < 0 || end < 0 ? Long.MAX_VALUE : end + extra;
    }

    private static void back(Socket from, Socket to) {
        try (InputStream i = from.getInputStream()) {
            i.transferTo(to.getOutputStream());
            to.shutdownOutput();
        } catch (IOException e) {
            close(to);
        }
    }

    private static void reset(Socket s) {
        try {
            s.setSoLinger(true, 0);
        } catch (SocketException ignored) {
            // closing anyway
        }
        close(s);
    }

    private static void close(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // test proxy
        }
    }

    @Override
    public void close() {
        try {
            server.close();
        } catch (IOException ignored) {
            // test proxy
        }
        for (Socket s : sockets) {
            close(s);
        }
    }
}
