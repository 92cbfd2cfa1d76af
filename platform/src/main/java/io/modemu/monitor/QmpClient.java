package io.modemu.monitor;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A small blocking QMP client (for the {@code modemu qmp} and {@code modemu migrate} commands, and
 * for tests): connects, reads the greeting, negotiates capabilities, runs commands and collects
 * the events that arrive in between. Not thread-safe.
 */
public final class QmpClient implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final SocketChannel channel;
    private final BufferedReader in;
    private final OutputStream out;
    private final JsonNode greeting;
    private final List<JsonNode> events = new ArrayList<>();
    private long nextId;

    private QmpClient(SocketChannel channel) throws IOException {
        this.channel = channel;
        this.in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
        this.out = Channels.newOutputStream(channel);
        this.greeting = readMessage();
        if (greeting == null || !greeting.has("QMP")) {
            throw new IOException("not a QMP server: no greeting");
        }
    }

    /**
     * Connects to {@code address}: a unix socket path, {@code unix:PATH}, or {@code tcp:HOST:PORT}.
     * Does not negotiate; see {@link #negotiate()}.
     */
    public static QmpClient connect(String address) throws IOException {
        SocketChannel ch;
        if (address.startsWith("tcp:")) {
            String hp = address.substring(4);
            int c = hp.lastIndexOf(':');
            if (c < 0) {
                throw new IOException("'" + address + "' is not tcp:HOST:PORT");
            }
            ch = SocketChannel.open(new InetSocketAddress(hp.substring(0, c), Integer.parseInt(hp.substring(c + 1))));
        } else {
            String p = address.startsWith("unix:") ? address.substring(5) : address;
            ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                ch.connect(UnixDomainSocketAddress.of(Path.of(p)));
            } catch (IOException e) {
                ch.close();
                throw new IOException("cannot connect to QMP socket " + p + ": " + e.getMessage(), e);
            }
        }
        return new QmpClient(ch);
    }

    /** Connects and negotiates capabilities. */
    public static QmpClient open(String address) throws IOException {
        QmpClient c = connect(address);
        c.negotiate();
        return c;
    }

    public JsonNode greeting() {
        return greeting;
    }

    public void negotiate() throws IOException {
        JsonNode r = call("qmp_capabilities", Map.of());
        if (r.has("error")) {
            throw new IOException("capabilities negotiation failed: " + r.get("error"));
        }
    }

    /** Sends raw text (tests use it for malformed input) and returns the next reply. */
    public JsonNode sendRaw(String text) throws IOException {
        out.write(text.getBytes(StandardCharsets.UTF_8));
        out.flush();
        return nextReply();
    }

    /** Runs {@code command} and returns the whole reply ({@code return} or {@code error}, with {@code id}). */
    public JsonNode call(String command, Map<String, ?> arguments) throws IOException {
        ObjectNode req = JSON.createObjectNode();
        req.put("execute", command);
        if (arguments != null && !arguments.isEmpty()) {
            req.set("arguments", JSON.valueToTree(arguments));
        }
        String id = "modemu-" + (++nextId);
        req.put("id", id);
        out.write((req + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        JsonNode r = nextReply();
        if (!r.path("id").asText().equals(id)) {
            throw new IOException("reply for another request: " + r);
        }
        return r;
    }

    /**
     * Runs {@code command} and returns its {@code return} value.
     *
     * @throws QmpError if the server answered with an error
     */
    public JsonNode execute(String command, Map<String, ?> arguments) throws IOException {
        JsonNode r = call(command, arguments);
        if (r.has("error")) {
            throw new QmpError(r.path("error").path("class").asText(), r.path("error").path("desc").asText());
        }
        return r.get("return");
    }

    private JsonNode nextReply() throws IOException {
        while (true) {
            JsonNode m = readMessage();
            if (m == null) {
                throw new IOException("QMP connection closed");
            }
            if (m.has("event")) {
                events.add(m);
                continue;
            }
            return m;
        }
    }

    private JsonNode readMessage() throws IOException {
        String line;
        do {
            line = in.readLine();
            if (line == null) {
                return null;
            }
        } while (line.isBlank());
        return JSON.readTree(line);
    }

    /** Events received so far (and clears the list). */
    public List<JsonNode> takeEvents() {
        List<JsonNode> e = new ArrayList<>(events);
        events.clear();
        return e;
    }

    /** Waits for the next event named {@code name} (events seen before are checked first). */
    public JsonNode awaitEvent(String name) throws IOException {
        for (int i = 0; i < events.size(); i++) {
            if (events.get(i).path("event").asText().equals(name)) {
                return events.remove(i);
            }
        }
        while (true) {
            JsonNode m = readMessage();
            if (m == null) {
                throw new IOException("QMP connection closed while waiting for event " + name);
            }
            if (m.path("event").asText().equals(name)) {
                return m;
            }
            if (m.has("event")) {
                events.add(m);
            }
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
