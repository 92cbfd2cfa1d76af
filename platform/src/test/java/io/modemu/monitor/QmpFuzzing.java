package io.modemu.monitor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import ch.qos.logback.classic.Level;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modemu.fuzz.LogWatch;
import io.modemu.machine.Machine;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.StringReader;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The QMP fuzz targets' harness, shared by the Jazzer fuzz test and the jqwik properties: bytes fed to
 * the {@link JsonFramer} alone, and to a real {@link QmpServer} over a real socket.
 *
 * <p>Framer properties: it ends (each frame consumes input), every frame is either a balanced JSON text
 * starting with a bracket or an error, and Jackson either parses a text or reports a parse error.
 *
 * <p>Server properties, for every input (optionally after a successful negotiation, optionally
 * written in small pieces): the greeting comes first; every framed input gets exactly one reply, in
 * QEMU's shapes ({@code {"return": ...}} or {@code {"error": {"class": <a QEMU class>, "desc": ...}}},
 * with the {@code id} echoed), events aside; the server hangs up within a bound after the client's
 * end of input; no command failed on an exception no code path foresaw (QmpServer's catch-all logs one
 * with its stack trace) and no thread died of one; and afterwards a new client is served.
 */
final class QmpFuzzing {
    static final int MODE_NEGOTIATE = 1;
    static final int MODE_TRICKLE = 2;
    static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> CLASSES = Set.of("GenericError", "CommandNotFound", "DeviceNotFound", "DeviceNotActive", "KVMMissingCap");
    private static final long BOUND_SECONDS = 30;
    private static LogWatch logs;
    private static Machine machine;
    private static QmpServer server;

    private QmpFuzzing() {
    }

    /** The server every input goes to (started once; it must keep serving whatever came before). */
    static synchronized QmpServer server() {
        if (server == null) {
            logs = watch();
            machine = Machine.builder().name("vm1").ram(1 << 20).iothread("io0").vcpus(1).build();
            Monitor monitor = new Monitor(machine, List.of(), List.of(), reason -> { });
            server = QmpServer.start(monitor, "tcp:127.0.0.1:0,server=on,wait=off");
        }
        return server;
    }

    /** From now on, a warning or error logged with a stack trace by the monitor, or a monitor thread dying, is a finding. */
    private static LogWatch watch() {
        LogWatch w = LogWatch.on("io.modemu.monitor", Level.WARN);
        Thread.UncaughtExceptionHandler previous = Thread.getDefaultUncaughtExceptionHandler();
        Thread.setDefaultUncaughtExceptionHandler((t, e) -> {
            if (t.getName().startsWith("qmp-")) {
                w.add("thread " + t.getName() + " died: " + e);
            }
            if (previous != null) {
                previous.uncaughtException(t, e);
            }
        });
        return w;
    }

    /** The frames {@link JsonFramer} cuts {@code text} into, each checked. */
    static List<JsonFramer.Frame> frames(String text) {
        JsonFramer f = new JsonFramer(new StringReader(text));
        List<JsonFramer.Frame> out = new ArrayList<>();
        try {
            JsonFramer.Frame fr;
            while ((fr = f.next()) != null) {
                assertThat(fr.json() == null).as("a frame is a text or an error: %s", fr).isNotEqualTo(fr.error() == null);
                if (fr.json() != null) {
                    String j = fr.json();
                    assertThat(j.charAt(0)).as("a text starts with a bracket: %s", j).isIn('{', '[');
                    assertThat(j.charAt(j.length() - 1)).as("a text ends with a bracket: %s", j).isIn('}', ']');
                    try {
                        JSON.readTree(j);
                    } catch (JsonProcessingException e) {
                        // a parse error: answered as one
                    }
                }
                out.add(fr);
                assertThat(out.size()).as("frames of %d chars", text.length()).isLessThanOrEqualTo(text.length() + 1);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /** The text a server decodes from {@code bytes} (UTF-8, malformed sequences replaced, as its reader does). */
    static String decode(byte[] bytes) {
        try (InputStreamReader r = new InputStreamReader(new ByteArrayInputStream(bytes), StandardCharsets.UTF_8)) {
            StringBuilder sb = new StringBuilder();
            char[] buf = new char[8192];
            int n;
            while ((n = r.read(buf)) > 0) {
                sb.append(buf, 0, n);
            }
            return sb.toString();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** One fuzz input for the framer alone. */
    static void framer(byte[] input) {
        frames(decode(input));
    }

    /** One fuzz input (a mode byte, then what the client sends) for a real server over a real socket; returns the replies. */
    static List<JsonNode> session(byte[] input) {
        QmpServer s = server();
        logs.reset();
        int mode = input.length == 0 ? 0 : input[0] & 0xff;
        byte[] payload = input.length == 0 ? input : java.util.Arrays.copyOfRange(input, 1, input.length);
        String what = "input of " + input.length + " bytes, mode " + mode;
        int expected = frames(decode(payload)).size();
        List<JsonNode> replies;
        try (Socket sock = connect(s)) {
            BufferedReader in = new BufferedReader(new InputStreamReader(sock.getInputStream(), StandardCharsets.UTF_8));
            CompletableFuture<List<String>> lines = CompletableFuture.supplyAsync(() -> readAll(in));
            OutputStream out = sock.getOutputStream();
            if ((mode & MODE_NEGOTIATE) != 0) {
                out.write("{\"execute\":\"qmp_capabilities\"}\n".getBytes(StandardCharsets.UTF_8));
                expected++;
            }
            if ((mode & MODE_TRICKLE) != 0) {
                for (int i = 0; i < payload.length; i += 7) {
                    out.write(payload, i, Math.min(7, payload.length - i));
                    out.flush();
                }
            } else {
                out.write(payload);
            }
            out.flush();
            sock.shutdownOutput();
            List<String> got;
            try {
                got = lines.get(BOUND_SECONDS, TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                throw new AssertionError(what + ": the server did not answer and hang up within " + BOUND_SECONDS + " s");
            } catch (Exception e) {
                throw new AssertionError(what + ": reading the replies failed", e);
            }
            assertThat(got).as("%s: no greeting", what).isNotEmpty();
            assertThat(parse(got.getFirst(), what).has("QMP")).as("%s: the greeting first: %s", what, got.getFirst()).isTrue();
            replies = new ArrayList<>();
            for (String line : got.subList(1, got.size())) {
                JsonNode n = parse(line, what);
                if (n.has("event")) {
                    assertThat(n.path("timestamp").path("seconds").isIntegralNumber()).as("%s: event %s", what, line).isTrue();
                    continue;
                }
                checkReply(n, line, what);
                replies.add(n);
            }
            assertThat(replies).as("%s: one reply per framed input", what).hasSize(expected);
        } catch (IOException e) {
            throw new AssertionError(what + ": the connection failed", e);
        }
        logs.assertNone(what);
        assertServes(s, what);
        return replies;
    }

    private static Socket connect(QmpServer s) throws IOException {
        String[] hp = s.address().substring(4).split(":");
        Socket sock = new Socket(hp[0], Integer.parseInt(hp[1]));
        sock.setSoTimeout((int) TimeUnit.SECONDS.toMillis(BOUND_SECONDS));
        return sock;
    }

    private static List<String> readAll(BufferedReader in) {
        List<String> out = new ArrayList<>();
        try {
            String l;
            while ((l = in.readLine()) != null) {
                out.add(l);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    private static JsonNode parse(String line, String what) {
        try {
            JsonNode n = JSON.readTree(line);
            assertThat(n.isObject()).as("%s: a reply is an object: %s", what, line).isTrue();
            return n;
        } catch (JsonProcessingException e) {
            throw new AssertionError(what + ": a reply is not JSON: " + line, e);
        }
    }

    /** QEMU's reply shapes: exactly one of return and error, an error with a known class and a description, nothing else but the id. */
    static void checkReply(JsonNode n, String line, String what) {
        List<String> keys = new ArrayList<>();
        n.fieldNames().forEachRemaining(keys::add);
        assertThat(keys).as("%s: reply members: %s", what, line).isSubsetOf("return", "error", "id");
        assertThat(n.has("return")).as("%s: exactly one of return and error: %s", what, line).isNotEqualTo(n.has("error"));
        if (n.has("error")) {
            JsonNode e = n.get("error");
            assertThat(e.path("class").asText()).as("%s: error class: %s", what, line).isIn(CLASSES);
            assertThat(e.path("desc").isTextual() && !e.path("desc").asText().isBlank()).as("%s: error desc: %s", what, line).isTrue();
        }
    }

    /** A new client still gets the greeting, negotiates and runs a command. */
    static void assertServes(QmpServer s, String what) {
        try (Socket sock = connect(s)) {
            BufferedReader in = new BufferedReader(new InputStreamReader(sock.getInputStream(), StandardCharsets.UTF_8));
            OutputStream out = sock.getOutputStream();
            assertThat(in.readLine()).as("%s: greeting for the next client", what).contains("\"QMP\"");
            out.write("{\"execute\":\"qmp_capabilities\"}{\"execute\":\"query-name\",\"id\":7}".getBytes(StandardCharsets.UTF_8));
            out.flush();
            List<JsonNode> got = new ArrayList<>();
            while (got.size() < 2) {
                String l = in.readLine();
                assertThat(l).as("%s: the next client's replies", what).isNotNull();
                JsonNode n = JSON.readTree(l);
                if (!n.has("event")) {
                    got.add(n);
                }
            }
            assertThat(got.get(1).path("return").path("name").asText()).as("%s: the next client is served", what).isEqualTo("vm1");
        } catch (IOException e) {
            throw new AssertionError(what + ": the next client could not be served", e);
        }
    }
}
