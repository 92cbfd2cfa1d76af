package io.modemu.monitor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modemu.block.BlockDriver;
import io.modemu.block.BlockNode;
import io.modemu.block.MemoryBlockNode;
import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The QMP monitor over real sockets: protocol, every command, error classes, events, several clients. */
class QmpServerTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;
    Machine machine;
    Monitor monitor;
    QmpServer server;
    final List<String> quits = new ArrayList<>();
    final CountDownLatch slowEntered = new CountDownLatch(1);
    final CountDownLatch slowRelease = new CountDownLatch(1);
    final AtomicInteger slowFinished = new AtomicInteger();

    @BeforeEach
    void setUp() {
        MemoryBlockNode node = new MemoryBlockNode(1 << 20, false, 0);
        BlockDriver mem = new BlockDriver() {
            public String name() {
                return "mem";
            }

            public String description() {
                return "test";
            }

            public BlockNode open(Options o) {
                o.bool("read-only", false);
                return node;
            }
        };
        machine = Machine.builder().name("vm1").ram(1 << 20).iothread("io0").vcpus(1)
                .contributions(Contributions.builder().add(mem).build()).build();
        machine.addDrive("d0", Options.parse("-drive", "driver=mem", null));
        monitor = new Monitor(machine, List.of(), List.of(), quits::add);
        monitor.register("x-slow", (a, ctx) -> {
            slowEntered.countDown();
            try {
                slowRelease.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            slowFinished.incrementAndGet();
            return Map.of("done", true);
        });
        server = QmpServer.start(monitor, "tcp:127.0.0.1:0,server=on,wait=off");
    }

    @AfterEach
    void tearDown() {
        server.close();
        machine.close();
    }

    /** A raw connection, to see exactly what goes over the wire. */
    final class Raw implements AutoCloseable {
        final Socket s;
        final BufferedReader in;
        final OutputStream out;

        Raw() throws IOException {
            String[] hp = server.address().substring(4).split(":");
            s = new Socket(hp[0], Integer.parseInt(hp[1]));
            s.setSoTimeout(10_000);
            in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            out = s.getOutputStream();
        }

        JsonNode read() throws IOException {
            String l = in.readLine();
            return l == null ? null : JSON.readTree(l);
        }

        JsonNode send(String text) throws IOException {
            out.write(text.getBytes(StandardCharsets.UTF_8));
            out.flush();
            JsonNode n;
            do {
                n = read();
            } while (n != null && n.has("event"));
            return n;
        }

        @Override
        public void close() throws IOException {
            s.close();
        }
    }

    @Test
    void greetingThenNegotiationThenCommandsWithIds() throws IOException {
        try (Raw r = new Raw()) {
            JsonNode g = r.read();
            assertThat(g.path("QMP").path("version").path("qemu").path("major").asInt()).isEqualTo(7);
            assertThat(g.path("QMP").path("capabilities").isArray()).isTrue();
            JsonNode early = r.send("{\"execute\": \"query-status\", \"id\": 1}");
            assertThat(early.path("error").path("class").asText()).isEqualTo("CommandNotFound");
            assertThat(early.path("error").path("desc").asText()).isEqualTo("Expecting capabilities negotiation with 'qmp_capabilities'");
            assertThat(early.path("id").asInt()).isEqualTo(1);
            assertThat(r.send("{\"execute\": \"qmp_capabilities\"}").path("return").isObject()).isTrue();
            JsonNode again = r.send("{\"execute\": \"qmp_capabilities\", \"id\": \"x\"}");
            assertThat(again.path("error").path("class").asText()).isEqualTo("CommandNotFound");
            JsonNode st = r.send("{\"execute\": \"query-status\", \"id\": {\"any\": [\"json\"]}}");
            assertThat(st.path("return").path("status").asText()).isEqualTo("prelaunch");
            assertThat(st.path("id")).isEqualTo(JSON.readTree("{\"any\": [\"json\"]}"));
        }
    }

    @Test
    void flushThenCloseStillSendsTheReplyOfTheCommandThatAskedForThem() throws Exception {
        // what 'quit' does in modemu run: the command wakes the main thread, which flushes and closes the
        // server while this session is still finishing the command and has not queued its reply yet
        CountDownLatch closed = new CountDownLatch(1);
        monitor.register("x-quit-then-linger", (a, ctx) -> {
            Thread.ofPlatform().start(() -> {
                server.flush(5_000);
                server.close();
                closed.countDown();
            });
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return Map.of("bye", true);
        });
        try (Raw r = new Raw()) {
            r.read();
            r.send("{\"execute\": \"qmp_capabilities\"}");
            JsonNode reply = r.send("{\"execute\": \"x-quit-then-linger\", \"id\": 7}");
            assertThat(reply).as("the reply, before the server hung up").isNotNull();
            assertThat(reply.path("return").path("bye").asBoolean()).isTrue();
            assertThat(reply.path("id").asInt()).isEqualTo(7);
            assertThat(closed.await(10, TimeUnit.SECONDS)).isTrue();
            assertThat(r.read()).as("then the connection closes").isNull();
        }
    }

    @Test
    void malformedInputGetsQmpErrorsAndTheConnectionStaysUp() throws IOException {
        try (Raw r = new Raw()) {
            r.read();
            r.send("{\"execute\": \"qmp_capabilities\"}");
            assertThat(r.send("{\"execute\": \"query-status\",, }").path("error").path("desc").asText()).startsWith("JSON parse error");
            assertThat(r.send("nonsense ").path("error").path("desc").asText()).isEqualTo("JSON parse error, invalid keyword 'nonsense'");
            assertThat(r.send("[1, 2]").path("error").path("desc").asText()).isEqualTo("QMP input must be a JSON object");
            assertThat(r.send("{\"arguments\": {}}").path("error").path("desc").asText()).isEqualTo("QMP input lacks member 'execute'");
            assertThat(r.send("{\"execute\": 42}").path("error").path("desc").asText()).isEqualTo("QMP input member 'execute' must be a string");
            assertThat(r.send("{\"execute\": \"stop\", \"arguments\": [1]}").path("error").path("desc").asText())
                    .isEqualTo("QMP input member 'arguments' must be an object");
            assertThat(r.send("{\"execute\": \"stop\", \"bogus\": 1}").path("error").path("desc").asText())
                    .isEqualTo("QMP input member 'bogus' is unexpected");
            assertThat(r.send("{\"execute\": \"no-such\"}").path("error").path("class").asText()).isEqualTo("CommandNotFound");
            JsonNode bad = r.send("{\"execute\": \"query-blockstats\", \"arguments\": {\"query-nodes\": \"yes\"}}");
            assertThat(bad.path("error").path("class").asText()).isEqualTo("GenericError");
            assertThat(bad.path("error").path("desc").asText()).isEqualTo("Invalid parameter type for 'query-nodes', expected: boolean");
            assertThat(r.send("{\"execute\": \"query-status\", \"arguments\": {\"verbose\": true}}").path("error").path("desc").asText())
                    .isEqualTo("Parameter 'verbose' is unexpected");
            // strings with braces and escapes do not confuse the framing
            assertThat(r.send("{\"execute\": \"query-name\", \"id\": \"}{\\\"\"}").path("return").path("name").asText()).isEqualTo("vm1");
            assertThat(r.send("{\"execute\": \"query-status\"}").path("return").path("status").asText()).isEqualTo("prelaunch");
        }
    }

    @Test
    void stopContAndEventsWithTimestamps() throws Exception {
        try (QmpClient c = QmpClient.open(server.address())) {
            assertThat(c.execute("cont", Map.of()).isObject()).isTrue();
            assertThat(c.execute("query-status", Map.of()).path("running").asBoolean()).isTrue();
            c.execute("stop", Map.of());
            JsonNode stop = c.awaitEvent("STOP");
            assertThat(stop.has("data")).isFalse();
            assertThat(stop.path("timestamp").path("seconds").asLong()).isPositive();
            assertThat(stop.path("timestamp").path("microseconds").asLong()).isBetween(0L, 999_999L);
            assertThat(c.execute("query-status", Map.of()).path("status").asText()).isEqualTo("paused");
            c.execute("cont", Map.of());
            c.awaitEvent("RESUME");
            c.execute("system_reset", Map.of());
            JsonNode reset = c.awaitEvent("RESET");
            assertThat(reset.path("data").path("reason").asText()).isEqualTo("host-qmp-system-reset");
            machine.vmStopForceState(RunState.SHUTDOWN).get(5, TimeUnit.SECONDS);
            assertThatThrownBy(() -> c.execute("cont", Map.of())).isInstanceOf(QmpError.class)
                    .hasMessage("Resetting the Virtual Machine is required");
        }
    }

    @Test
    void queriesAnswerWithQemusShapes() throws Exception {
        Map<String, JsonNode> replies = new java.util.LinkedHashMap<>();
        try (QmpClient c = QmpClient.open(server.address())) {
            for (String cmd : List.of("query-status", "query-version", "query-name", "query-commands", "query-iothreads",
                    "query-block", "query-blockstats", "stop", "cont", "system_reset")) {
                replies.put(cmd, c.execute(cmd, Map.of()));
            }
            c.execute("stop", Map.of());
            c.execute("quit", Map.of());
            assertThat(quits).containsExactly("host-qmp-quit");
            List<JsonNode> events = c.takeEvents();
            JsonNode schema = JSON.readTree(QmpServerTest.class.getResourceAsStream("qapi-7.2-shapes.json"));
            for (var e : replies.entrySet()) {
                QapiShapes.check(schema, schema.path("commands").path(e.getKey()).asText(), e.getValue(), e.getKey());
            }
            machine.emit("SHUTDOWN", Map.of("guest", false, "reason", "host-qmp-quit"));
            events.add(c.awaitEvent("SHUTDOWN"));
            for (JsonNode ev : events) {
                QapiShapes.checkEvent(schema, ev);
            }
        }
        assertThat(replies.get("query-iothreads").get(0).path("thread-id").asLong()).isPositive();
        assertThat(replies.get("query-block").get(0).path("inserted").path("image").path("virtual-size").asLong()).isEqualTo(1 << 20);
        List<String> names = new ArrayList<>();
        replies.get("query-commands").forEach(n -> names.add(n.path("name").asText()));
        assertThat(names).contains("qmp_capabilities", "query-status", "stop", "cont", "quit", "system_reset", "query-version",
                "query-commands", "query-name", "query-block", "query-blockstats", "query-iothreads", "query-plugins", "x-slow");
    }

    @Test
    void twoClientsAtOnceBothGetEvents() throws Exception {
        try (QmpClient a = QmpClient.open(server.address()); QmpClient b = QmpClient.open(server.address())) {
            a.execute("cont", Map.of());
            b.execute("stop", Map.of());
            assertThat(a.awaitEvent("STOP")).isNotNull();
            assertThat(b.awaitEvent("STOP")).isNotNull();
            assertThat(a.awaitEvent("RESUME")).isNotNull();
            assertThat(b.execute("query-status", Map.of()).path("status").asText()).isEqualTo("paused");
        }
    }

    @Test
    void aClientThatVanishesMidCommandHarmsNothing() throws Exception {
        Raw r = new Raw();
        r.read();
        r.send("{\"execute\": \"qmp_capabilities\"}");
        r.out.write("{\"execute\": \"x-slow\"}".getBytes(StandardCharsets.UTF_8));
        r.out.flush();
        assertThat(slowEntered.await(10, TimeUnit.SECONDS)).isTrue();
        r.close();
        slowRelease.countDown();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (slowFinished.get() == 0 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertThat(slowFinished.get()).isEqualTo(1);
        try (QmpClient c = QmpClient.open(server.address())) {
            assertThat(c.execute("query-status", Map.of()).path("status").asText()).isEqualTo("prelaunch");
        }
        assertThat(machine.mainLoop().uncaughtErrors()).isZero();
    }

    @Test
    void aUnixSocketMonitorIsOwnerOnlyAndRemovedOnClose() throws Exception {
        Path sock = tmp.resolve("vm.sock");
        try (QmpServer unix = QmpServer.start(monitor, "unix:" + sock + ",server=on,wait=off")) {
            assertThat(Files.getPosixFilePermissions(sock)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
            try (QmpClient c = QmpClient.open(sock.toString())) {
                assertThat(c.execute("query-name", Map.of()).path("name").asText()).isEqualTo("vm1");
            }
        }
        assertThat(sock).doesNotExist();
        try (var s = Files.list(tmp)) {
            assertThat(s.toList()).as("no temporary directory left behind").isEmpty();
        }
    }

    @Test
    void aTcpMonitorOffLoopbackNeedsAnExplicitOptIn() {
        assertThatThrownBy(() -> QmpServer.start(monitor, "tcp:0.0.0.0:0,server=on,wait=off"))
                .hasMessage("-qmp: 0.0.0.0 is not a loopback address: anyone who can reach it controls the VM; add allow-remote=on if that is what you want");
        assertThatThrownBy(() -> QmpServer.start(monitor, "tcp:127.0.0.1:0,server=off"))
                .hasMessageContaining("only server=on is supported");
        assertThatThrownBy(() -> QmpServer.start(monitor, "pipe:/x")).hasMessageContaining("unsupported address 'pipe:/x'");
    }

    /** Found by fuzzing: the session hung up once its outbox was empty, before the writer had written the line it took. */
    @Test
    void aClientThatEndsItsInputGetsTheGreetingAndEveryReplyBeforeTheHangUp() throws IOException {
        for (int i = 0; i < 40; i++) {
            try (Raw r = new Raw()) {
                r.s.shutdownOutput();
                assertThat(r.read()).as("greeting to a client that sent nothing, round %d", i).isNotNull();
                assertThat(r.read()).as("then the hang-up").isNull();
            }
            try (Raw r = new Raw()) {
                r.out.write("{\"execute\": \"qmp_capabilities\"}{\"execute\": \"query-name\"}".getBytes(StandardCharsets.UTF_8));
                r.s.shutdownOutput();
                assertThat(r.read().has("QMP")).as("greeting, round %d", i).isTrue();
                assertThat(r.read().has("return")).as("capabilities, round %d", i).isTrue();
                assertThat(r.read()).as("last reply, round %d", i).isNotNull();
                assertThat(r.read()).as("then the hang-up").isNull();
            }
        }
    }

    /**
     * A process that quits flushes its monitors and closes them from another thread as soon as the
     * command asks (as {@code modemu run} does): the reply to {@code quit}, queued only once the command
     * returns, must still go out first.
     */
    @Test
    void theReplyToQuitGoesOutBeforeTheProcessClosesItsMonitors() throws Exception {
        QmpServer[] own = new QmpServer[1];
        Monitor m = new Monitor(machine, List.of(), List.of(), reason -> {
            Thread.ofPlatform().start(() -> {
                own[0].flush(5_000);
                own[0].close();
            });
            try {
                Thread.sleep(100); // the command is still running when the flush begins
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        own[0] = QmpServer.start(m, "tcp:127.0.0.1:0,server=on,wait=off");
        String[] hp = own[0].address().substring(4).split(":");
        try (Socket s = new Socket(hp[0], Integer.parseInt(hp[1]))) {
            s.setSoTimeout(10_000);
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            s.getOutputStream().write("{\"execute\":\"qmp_capabilities\"}{\"execute\":\"quit\",\"id\":9}".getBytes(StandardCharsets.UTF_8));
            assertThat(in.readLine()).contains("QMP");
            assertThat(JSON.readTree(in.readLine()).has("return")).isTrue();
            String line = in.readLine();
            assertThat(line).as("the reply to quit, before the hang-up").isNotNull();
            JsonNode quit = JSON.readTree(line);
            assertThat(quit.path("return").isObject()).as("the reply to quit: %s", quit).isTrue();
            assertThat(quit.path("id").asInt()).isEqualTo(9);
        } finally {
            own[0].close();
        }
    }

    @Test
    void aHugeOrDeeplyNestedInputIsRefusedWithoutKillingTheConnection() throws IOException {
        try (Raw r = new Raw()) {
            r.read();
            r.send("{\"execute\": \"qmp_capabilities\"}");
            String deep = "[".repeat(2000) + "\n";
            assertThat(r.send(deep).path("error").path("desc").asText()).contains("nesting deeper than 1024");
            assertThat(r.send("{\"execute\": \"query-status\"}").path("return").path("status").asText()).isEqualTo("prelaunch");
        }
    }

    /** Checks replies against the QAPI shapes in qapi-7.2-shapes.json. */
    static final class QapiShapes {
        static void check(JsonNode schema, String type, JsonNode value, String where) {
            if (type.startsWith("list:")) {
                assertThat(value.isArray()).as("%s is a list", where).isTrue();
                int i = 0;
                for (JsonNode e : value) {
                    check(schema, type.substring(5), e, where + "[" + i++ + "]");
                }
                return;
            }
            switch (type) {
                case "str" -> assertThat(value.isTextual()).as("%s is a string", where).isTrue();
                case "int" -> assertThat(value.isIntegralNumber()).as("%s is an integer", where).isTrue();
                case "bool" -> assertThat(value.isBoolean()).as("%s is a boolean", where).isTrue();
                default -> {
                    if (type.startsWith("enum:")) {
                        assertThat(List.of(type.substring(5).split("\\|"))).as("%s value", where).contains(value.asText());
                        return;
                    }
                    JsonNode def = schema.path("types").path(type);
                    assertThat(def.isObject()).as("type %s defined", type).isTrue();
                    checkObject(schema, def, value, where + " (" + type + ")");
                }
            }
        }

        static void checkObject(JsonNode schema, JsonNode def, JsonNode value, String where) {
            assertThat(value.isObject()).as("%s is an object", where).isTrue();
            for (Iterator<String> it = def.fieldNames(); it.hasNext(); ) {
                String m = it.next();
                boolean optional = m.endsWith("?");
                String name = optional ? m.substring(0, m.length() - 1) : m;
                if (!value.has(name)) {
                    assertThat(optional).as("%s has required member '%s'", where, name).isTrue();
                    continue;
                }
                check(schema, def.get(m).asText(), value.get(name), where + "." + name);
            }
            for (Iterator<String> it = value.fieldNames(); it.hasNext(); ) {
                String m = it.next();
                assertThat(def.has(m) || def.has(m + "?")).as("%s member '%s' is in QEMU's schema", where, m).isTrue();
            }
        }

        static void checkEvent(JsonNode schema, JsonNode ev) {
            String name = ev.path("event").asText();
            assertThat(schema.path("events").has(name)).as("event %s known", name).isTrue();
            assertThat(ev.path("timestamp").path("seconds").isIntegralNumber()).isTrue();
            JsonNode def = schema.path("events").get(name);
            if (def.isNull()) {
                assertThat(ev.has("data")).as("%s carries no data", name).isFalse();
            } else {
                checkObject(schema, def, ev.path("data"), "event " + name);
            }
        }
    }

}
