package io.modemu.monitor;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.modemu.machine.MachineEvent;
import io.modemu.machine.Registration;
import io.modemu.options.ConfigurationException;
import io.modemu.options.Options;
import io.modemu.platform.PlatformVersion;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A QMP server (QEMU's wire protocol) on a unix socket or a TCP port: the greeting, capabilities
 * negotiation, {@code execute}/{@code arguments}/{@code id} with {@code return} or {@code error}
 * replies, and asynchronous events with timestamps. Several clients at once, each on its own
 * thread; a malformed input gets an error and the connection stays up; a client that goes away
 * mid-command harms nothing. A unix socket is created owner-only; a TCP monitor on a non-loopback
 * address needs {@code allow-remote=on}.
 */
public final class QmpServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(QmpServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int OUTBOX = 4096;

    private final Monitor monitor;
    private final ServerSocketChannel server;
    private final Path unixPath;
    private final String address;
    private final boolean waitForClient;
    private final List<Session> sessions = new CopyOnWriteArrayList<>();
    private final CountDownLatch firstClient = new CountDownLatch(1);
    private final Registration events;
    private volatile boolean closed;

    private QmpServer(Monitor monitor, ServerSocketChannel server, Path unixPath, String address, boolean waitForClient) {
        this.monitor = monitor;
        this.server = server;
        this.unixPath = unixPath;
        this.address = address;
        this.waitForClient = waitForClient;
        this.events = monitor.machine().addEventListener(this::broadcast);
        Thread.ofVirtual().name("qmp-accept " + address).start(this::acceptLoop);
    }

    /**
     * Starts a server from a {@code -qmp} option: {@code unix:PATH[,server=on][,wait=off]} or
     * {@code tcp:HOST:PORT[,server=on][,wait=off][,allow-remote=on]}.
     */
    public static QmpServer start(Monitor monitor, String spec) {
        Options o = Options.parse("-qmp", spec, "address");
        String addr = o.string("address");
        if (!o.bool("server", true)) {
            throw new ConfigurationException("-qmp: only server=on is supported (Modemu listens, clients connect)");
        }
        boolean wait = o.bool("wait", true);
        boolean allowRemote = o.bool("allow-remote", false);
        o.checkAllUsed();
        try {
            if (addr.startsWith("unix:")) {
                Path p = Path.of(addr.substring(5));
                return new QmpServer(monitor, bindUnix(p), p, addr, wait);
            }
            if (addr.startsWith("tcp:")) {
                String hp = addr.substring(4);
                int colon = hp.lastIndexOf(':');
                if (colon < 0) {
                    throw new ConfigurationException("-qmp: '" + addr + "' is not tcp:HOST:PORT");
                }
                String host = hp.substring(0, colon).replace("[", "").replace("]", "");
                int port;
                try {
                    port = Integer.parseInt(hp.substring(colon + 1));
                } catch (NumberFormatException e) {
                    throw new ConfigurationException("-qmp: port '" + hp.substring(colon + 1) + "' is not a number");
                }
                InetAddress ia = InetAddress.getByName(host.isEmpty() ? "127.0.0.1" : host);
                if (!ia.isLoopbackAddress() && !allowRemote) {
                    throw new ConfigurationException("-qmp: " + host + " is not a loopback address: anyone who can reach it controls the VM; add allow-remote=on if that is what you want");
                }
                ServerSocketChannel s = ServerSocketChannel.open();
                s.bind(new InetSocketAddress(ia, port));
                InetSocketAddress bound = (InetSocketAddress) s.getLocalAddress();
                return new QmpServer(monitor, s, null, "tcp:" + bound.getHostString() + ":" + bound.getPort(), wait);
            }
        } catch (IOException e) {
            throw new ConfigurationException("-qmp: cannot listen on " + addr + ": " + e.getMessage(), e);
        }
        throw new ConfigurationException("-qmp: unsupported address '" + addr + "' (use unix:PATH or tcp:HOST:PORT)");
    }

    /** Binds a unix socket that only the owner can use, without a window in which others could connect. */
    private static ServerSocketChannel bindUnix(Path path) throws IOException {
        Path parent = path.toAbsolutePath().getParent();
        if (Files.exists(path)) {
            if (Files.isDirectory(path)) {
                throw new IOException(path + " is a directory");
            }
            Files.delete(path); // a stale socket of an earlier run
        }
        Path dir = Files.createTempDirectory(parent, ".qmp-", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        try {
            Path tmp = dir.resolve("s");
            ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            s.bind(UnixDomainSocketAddress.of(tmp));
            Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
            Files.move(tmp, path, StandardCopyOption.ATOMIC_MOVE);
            return s;
        } finally {
            Files.deleteIfExists(dir.resolve("s"));
            Files.deleteIfExists(dir);
        }
    }

    /** Where the server listens, for example {@code tcp:127.0.0.1:40123} (with the real port). */
    public String address() {
        return address;
    }

    /** With {@code wait=on} (QEMU's default), blocks until the first client connected. */
    public void awaitFirstClientIfAsked() throws InterruptedException {
        if (waitForClient) {
            firstClient.await();
        }
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                SocketChannel ch = server.accept();
                if (unixPath == null) {
                    // replies are small lines written one by one: without this, Nagle's algorithm holds each reply that
                    // follows another until the client's delayed ACK (~40 ms on Linux)
                    ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
                }
                Session s = new Session(ch);
                sessions.add(s);
                firstClient.countDown();
                Thread.ofVirtual().name("qmp-session").start(s::run);
            } catch (IOException e) {
                if (!closed) {
                    log.warn("QMP {}: accept failed: {}", address, e.getMessage());
                }
                return;
            }
        }
    }

    private void broadcast(MachineEvent e) {
        ObjectNode n = JSON.createObjectNode();
        n.put("event", e.name());
        if (!e.data().isEmpty()) {
            n.set("data", JSON.valueToTree(e.data()));
        }
        ObjectNode ts = n.putObject("timestamp");
        ts.put("seconds", e.timestampMicros() / 1_000_000);
        ts.put("microseconds", e.timestampMicros() % 1_000_000);
        String line = n.toString();
        for (Session s : sessions) {
            if (s.negotiated) {
                s.send(line);
            }
        }
    }

    /**
     * Waits up to {@code millis} for every command in progress to reply and for every queued reply and
     * event to be written (a process that quits calls this first, so that the reply to {@code quit}
     * goes out).
     */
    public void flush(long millis) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        for (Session s : sessions) {
            s.awaitWritten(deadline);
        }
    }

    @Override
    public void close() {
        closed = true;
        events.close();
        try {
            server.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        for (Session s : sessions) {
            s.close();
        }
        if (unixPath != null) {
            try {
                Files.deleteIfExists(unixPath);
            } catch (IOException e) {
                log.warn("cannot remove QMP socket {}: {}", unixPath, e.getMessage());
            }
        }
    }

    /** One client connection: a reader thread runs commands, a writer thread sends replies and events in order. */
    private final class Session {
        private final SocketChannel channel;
        private final BlockingQueue<String> outbox = new ArrayBlockingQueue<>(OUTBOX);
        /** Lines queued, and lines the writer has written: the outbox is empty before its last line is on the wire. */
        private final AtomicLong queued = new AtomicLong();
        private volatile long written;
        /** A command is being handled: its reply is not queued yet. */
        private volatile boolean busy;
        volatile boolean negotiated;
        volatile boolean dead;

        Session(SocketChannel channel) {
            this.channel = channel;
        }

        void send(String line) {
            if (dead) {
                return;
            }
            queued.incrementAndGet();
            if (!outbox.offer(line)) {
                log.warn("QMP {}: a client does not read its replies and events; disconnecting it", address);
                close();
            }
        }

        /**
         * Waits until no command is in progress and every line queued is written, the session died, or
         * {@code deadline} ({@link System#nanoTime()}) passed.
         */
        void awaitWritten(long deadline) {
            while ((busy || written < queued.get()) && !dead && System.nanoTime() - deadline < 0) {
                LockSupport.parkNanos(50_000);
            }
        }

        void run() {
            Thread writer = Thread.ofVirtual().name("qmp-writer").start(this::writeLoop);
            try {
                send(greeting());
                JsonFramer framer = new JsonFramer(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
                JsonFramer.Frame f;
                while (!dead && (f = framer.next()) != null) {
                    busy = true;
                    try {
                        send(handle(f));
                    } finally {
                        busy = false;
                    }
                }
            } catch (IOException e) {
                log.debug("QMP {}: client gone: {}", address, e.getMessage());
            } finally {
                // let queued replies go out, then hang up
                awaitWritten(System.nanoTime() + TimeUnit.SECONDS.toNanos(2));
                close();
                writer.interrupt();
            }
        }

        private void writeLoop() {
            try (OutputStream out = Channels.newOutputStream(channel)) {
                while (!dead) {
                    String line = outbox.take();
                    out.write((line + "\r\n").getBytes(StandardCharsets.UTF_8));
                    out.flush();
                    written++;
                }
            } catch (IOException | InterruptedException e) {
                close();
            }
        }

        void close() {
            dead = true;
            sessions.remove(this);
            try {
                channel.close();
            } catch (IOException ignored) {
                // already closing
            }
        }

        private String greeting() {
            Map<String, Object> version = new LinkedHashMap<>();
            version.put("qemu", Monitor.QEMU_VERSION);
            version.put("package", "modemu-" + PlatformVersion.get());
            Map<String, Object> qmp = new LinkedHashMap<>();
            qmp.put("version", version);
            qmp.put("capabilities", List.of());
            return JSON.valueToTree(Map.of("QMP", qmp)).toString();
        }

        private String handle(JsonFramer.Frame f) {
            JsonNode id = null;
            try {
                if (f.error() != null) {
                    throw QmpError.generic(f.error());
                }
                JsonNode n;
                try {
                    n = JSON.readTree(f.json());
                } catch (JsonProcessingException e) {
                    throw QmpError.generic("JSON parse error, " + e.getOriginalMessage());
                }
                if (!n.isObject()) {
                    throw QmpError.generic("QMP input must be a JSON object");
                }
                id = n.get("id");
                for (var it = n.fieldNames(); it.hasNext(); ) {
                    String k = it.next();
                    if (k.equals("exec-oob")) {
                        throw QmpError.generic("QMP input member 'exec-oob' is unexpected: out-of-band execution is not enabled");
                    }
                    if (!Set.of("execute", "arguments", "id").contains(k)) {
                        throw QmpError.generic("QMP input member '" + k + "' is unexpected");
                    }
                }
                JsonNode exec = n.get("execute");
                if (exec == null) {
                    throw QmpError.generic("QMP input lacks member 'execute'");
                }
                if (!exec.isTextual()) {
                    throw QmpError.generic("QMP input member 'execute' must be a string");
                }
                JsonNode argNode = n.get("arguments");
                if (argNode != null && !argNode.isObject()) {
                    throw QmpError.generic("QMP input member 'arguments' must be an object");
                }
                @SuppressWarnings("unchecked")
                Map<String, Object> args = argNode == null ? Map.of() : JSON.convertValue(argNode, Map.class);
                String name = exec.asText();
                Object result;
                if (name.equals("qmp_capabilities")) {
                    if (negotiated) {
                        throw new QmpError(QmpError.COMMAND_NOT_FOUND, "Capabilities negotiation is already complete, command ignored");
                    }
                    CommandArguments a = new CommandArguments(args);
                    if (a.has("enable")) {
                        Object en = args.get("enable");
                        if (!(en instanceof List<?> l)) {
                            throw QmpError.generic("Invalid parameter type for 'enable', expected: array");
                        }
                        if (!l.isEmpty()) {
                            throw QmpError.generic("Capability '" + l.getFirst() + "' not available");
                        }
                    }
                    a.checkNoneUnexpected();
                    negotiated = true;
                    result = Map.of();
                } else if (!negotiated) {
                    throw new QmpError(QmpError.COMMAND_NOT_FOUND, "Expecting capabilities negotiation with 'qmp_capabilities'");
                } else {
                    result = monitor.execute(name, args);
                }
                ObjectNode r = JSON.createObjectNode();
                r.set("return", JSON.valueToTree(result));
                if (id != null) {
                    r.set("id", id);
                }
                return r.toString();
            } catch (QmpError e) {
                return error(e.errorClass(), e.desc(), id);
            } catch (RuntimeException e) {
                log.warn("QMP {}: command failed", address, e);
                return error(QmpError.GENERIC_ERROR, e.getMessage() != null ? e.getMessage() : e.toString(), id);
            }
        }

        private String error(String cls, String desc, JsonNode id) {
            ObjectNode r = JSON.createObjectNode();
            ObjectNode e = r.putObject("error");
            e.put("class", cls);
            e.put("desc", desc);
            if (id != null) {
                r.set("id", id);
            }
            return r.toString();
        }
    }
}
