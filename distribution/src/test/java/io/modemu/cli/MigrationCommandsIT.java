package io.modemu.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.modemu.monitor.QmpClient;
import io.modemu.monitor.QmpError;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * The QMP migration commands and {@code modemu migrate}, between two VMs built by {@code modemu run}
 * from the installation's plugins (virtio-blk on an IOThread, disk-verify, migration over tcp).
 */
class MigrationCommandsIT {
    static final Path PLUGINS = Path.of(System.getProperty("modemu.dist.dir"), "plugins");

    @TempDir
    Path tmp;

    static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** The VMs a test started, by name: {@link #quitLeftovers} quits those a failed test left running. */
    private final Map<String, CompletableFuture<RunOptionsIT.Result>> vms = new java.util.concurrent.ConcurrentHashMap<>();

    @AfterEach
    void quitLeftovers() throws Exception {
        for (var e : vms.entrySet()) {
            if (!e.getValue().isDone()) {
                try (QmpClient c = QmpClient.open(tmp.resolve(e.getKey() + ".sock").toString())) {
                    c.execute("quit", Map.of());
                } catch (java.io.IOException | RuntimeException gone) {
                    // it is exiting already
                }
                try {
                    e.getValue().get(30, TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException ignored) {
                    // the test's own failure is what matters
                }
            }
        }
    }

    private CompletableFuture<RunOptionsIT.Result> vm(String name, Path disk, String... extra) {
        List<String> args = new ArrayList<>(List.of("run", "-name", name, "-m", "64M", "-object", "iothread,id=io0",
                "-drive", "file=" + disk + ",format=raw,if=none,id=d0", "-device", "virtio-blk-device,drive=d0,iothread=io0,id=vd0",
                "-guest", "disk-verify,blocks=256,dirty-rate=4M,dirty-size=4M",
                "-qmp", "unix:" + tmp.resolve(name + ".sock") + ",server=on,wait=off"));
        args.addAll(List.of(extra));
        // a thread of its own: a VM left running by a failed test must not hold one of the common pool's few
        // threads (on two processors, two of them: the next test's VMs then never started)
        CompletableFuture<RunOptionsIT.Result> vm = CompletableFuture.supplyAsync(() -> RunOptionsIT.run(args.toArray(String[]::new)),
                r -> Thread.ofPlatform().daemon().name("vm-" + name).start(r));
        vms.put(name, vm);
        return vm;
    }

    private String migrateLog() {
        try {
            return Files.readString(tmp.resolve("migrate.log"));
        } catch (java.io.IOException e) {
            return e.toString();
        }
    }

    private QmpClient connect(String name, CompletableFuture<RunOptionsIT.Result> vm) throws Exception {
        Path sock = tmp.resolve(name + ".sock");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            assertThat(vm.isDone()).as("%s exited: %s", name, vm.isDone() ? vm.join() : "").isFalse();
            if (Files.exists(sock)) {
                try {
                    return QmpClient.open(sock.toString());
                } catch (java.io.IOException e) {
                    // not accepting yet
                }
            }
            Thread.sleep(20);
        }
        throw new AssertionError(name + " did not open its QMP socket");
    }

    @Test
    void migrationCommandsDriveALiveMigrationWithQemusShapes() throws Exception {
        Path disk = tmp.resolve("disk.img");
        try (var f = new java.io.RandomAccessFile(disk.toFile(), "rw")) {
            f.setLength(4 << 20);
        }
        int port = freePort();
        var dst = vm("dst", disk, "-incoming", "tcp:127.0.0.1:" + port);
        var src = vm("src", disk);
        try (QmpClient s = connect("src", src); QmpClient d = connect("dst", dst)) {
            assertThat(d.execute("query-status", Map.of()).path("status").asText()).isEqualTo("inmigrate");
            JsonNode params = s.execute("query-migrate-parameters", Map.of());
            assertThat(params.path("downtime-limit").asLong()).isEqualTo(300);
            assertThat(params.has("max-bandwidth")).isTrue();
            assertThat(params.has("multifd-channels")).isTrue();
            s.execute("migrate-set-parameters", Map.of("downtime-limit", 500, "max-bandwidth", 1L << 40));
            assertThat(s.execute("query-migrate-parameters", Map.of()).path("downtime-limit").asLong()).isEqualTo(500);
            assertThatThrownBy(() -> s.execute("migrate-set-parameters", Map.of("downtime-limit", "soon")))
                    .isInstanceOf(QmpError.class).hasMessage("Invalid parameter type for 'downtime-limit', expected: integer");
            assertThatThrownBy(() -> s.execute("migrate-set-parameters", Map.of("speed", 1)))
                    .hasMessage("Parameter 'speed' is unexpected");
            s.execute("migrate-set-capabilities", Map.of("capabilities", List.of(Map.of("capability", "auto-converge", "state", true))));
            JsonNode caps = s.execute("query-migrate-capabilities", Map.of());
            assertThat(caps.toString()).contains("{\"capability\":\"auto-converge\",\"state\":true}");
            assertThatThrownBy(() -> s.execute("migrate-set-capabilities",
                    Map.of("capabilities", List.of(Map.of("capability", "x-colo", "state", true)))))
                    .hasMessageStartingWith("Capability 'x-colo' is not supported by Modemu");
            assertThat(s.execute("query-migrate", Map.of()).size()).as("no migration yet: an empty object, as QEMU").isZero();
            assertThatThrownBy(() -> s.execute("migrate", Map.of("uri", "carrier-pigeon:home")))
                    .hasMessageStartingWith("no migration scheme 'carrier-pigeon'");
            s.execute("migrate_cancel", Map.of());

            // the CLI's migrate command, with its progress and final statistics
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            int rc = Main.execute(new PrintWriter(out, true), new PrintWriter(err, true), "migrate", tmp.resolve("src.sock").toString(),
                    "tcp:127.0.0.1:" + port, "--plain");
            assertThat(rc).as(out + "\n" + err).isZero();
            assertThat(out.toString()).contains("migration completed").contains("downtime").contains("transferred");
            JsonNode info = s.execute("query-migrate", Map.of());
            assertThat(info.path("status").asText()).isEqualTo("completed");
            for (String k : List.of("total-time", "setup-time", "downtime")) {
                assertThat(info.path(k).isIntegralNumber()).as(k).isTrue();
            }
            for (String k : List.of("total", "transferred", "remaining", "duplicate", "normal", "normal-bytes", "dirty-sync-count",
                    "pages-per-second", "dirty-pages-rate")) {
                assertThat(info.path("ram").path(k).isIntegralNumber()).as("ram." + k).isTrue();
            }
            assertThat(info.path("ram").path("mbps").isNumber()).isTrue();
            assertThat(s.execute("query-status", Map.of()).path("status").asText()).isEqualTo("postmigrate");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!d.execute("query-status", Map.of()).path("status").asText().equals("running") && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertThat(d.execute("query-status", Map.of()).path("status").asText()).isEqualTo("running");
            long before = d.execute("query-guest", Map.of()).path("verified").asLong();
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (d.execute("query-guest", Map.of()).path("verified").asLong() <= before && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            JsonNode g = d.execute("query-guest", Map.of());
            assertThat(g.path("verified").asLong()).as("the guest carries on at the destination").isGreaterThan(before);
            assertThat(g.path("failed").asLong()).isZero();
            s.execute("quit", Map.of());
            d.execute("quit", Map.of());
        }
        assertThat(src.get(30, TimeUnit.SECONDS).exit()).isZero();
        assertThat(dst.get(30, TimeUnit.SECONDS).exit()).isZero();
    }

    @ParameterizedTest(name = "SIG{0}")
    @ValueSource(strings = {"INT", "TERM"})
    void ctrlCOrSigtermOnModemuMigrateCancelsTheMigrationAndTheSourceKeepsRunning(String signal) throws Exception {
        Path disk = tmp.resolve("disk.img");
        try (var f = new java.io.RandomAccessFile(disk.toFile(), "rw")) {
            f.setLength(4 << 20);
        }
        int port = freePort();
        var dst = vm("dst", disk, "-incoming", "tcp:127.0.0.1:" + port);
        var src = vm("src", disk);
        try (QmpClient s = connect("src", src); QmpClient d = connect("dst", dst)) {
            Path bin = Path.of(System.getProperty("modemu.dist.dir"), "bin", "modemu");
            // as from a terminal: SIGINT at its default disposition. A process started from a shell's background job
            // (CI scripts, 'nohup ... &') inherits SIGINT ignored, and a JVM keeps an inherited ignore, as any program
            // should; GNU env resets it for the child
            ProcessBuilder pb = new ProcessBuilder("env", "--default-signal=INT", bin.toString(), "migrate", tmp.resolve("src.sock").toString(),
                    "tcp:127.0.0.1:" + port, "--max-bandwidth", "2M", "--plain");
            pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
            pb.redirectErrorStream(true).redirectOutput(tmp.resolve("migrate.log").toFile());
            Process p = pb.start();
            long deadline;
            try {
                deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (!s.execute("query-migrate", Map.of()).path("status").asText().equals("active") && System.nanoTime() < deadline) {
                    Thread.sleep(20);
                }
                assertThat(s.execute("query-migrate", Map.of()).path("status").asText()).isEqualTo("active");
                assertThat(new ProcessBuilder("kill", "-" + signal, String.valueOf(p.pid())).start().waitFor()).isZero();
                assertThat(p.waitFor(60, TimeUnit.SECONDS)).as(() -> "modemu migrate exits after SIG" + signal + "; its output:\n" + migrateLog()).isTrue();
            } finally {
                p.destroyForcibly();
            }
            String log = Files.readString(tmp.resolve("migrate.log"));
            assertThat(log).contains("cancelling the migration").contains("migration cancelled");
            assertThat(s.execute("query-migrate", Map.of()).path("status").asText()).isEqualTo("cancelled");
            assertThat(s.execute("query-status", Map.of()).path("status").asText()).isEqualTo("running");
            long before = s.execute("query-guest", Map.of()).path("verified").asLong();
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (s.execute("query-guest", Map.of()).path("verified").asLong() <= before && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertThat(s.execute("query-guest", Map.of()).path("verified").asLong()).as("the source's guest carries on").isGreaterThan(before);
            s.execute("quit", Map.of());
            try {
                d.execute("quit", Map.of());
            } catch (java.io.IOException gone) {
                // the destination may already have exited after the cancelled stream
            }
        }
        assertThat(src.get(30, TimeUnit.SECONDS).exit()).isZero();
        dst.get(60, TimeUnit.SECONDS);
    }

    @Test
    void aDestinationWhoseIncomingMigrationFailsExitsNonZeroWithTheReason() throws Exception {
        Path disk = tmp.resolve("disk.img");
        try (var f = new java.io.RandomAccessFile(disk.toFile(), "rw")) {
            f.setLength(4 << 20);
        }
        int port = freePort();
        var dst = vm("dst", disk, "-incoming", "tcp:127.0.0.1:" + port);
        connect("dst", dst).close();
        try (var sock = new java.net.Socket("127.0.0.1", port)) {
            sock.getOutputStream().write("this is not a migration stream at all, not even close".getBytes());
        }
        RunOptionsIT.Result r = dst.get(60, TimeUnit.SECONDS);
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("modemu: incoming migration failed:");
    }

    @Test
    void aDeferredDestinationWhoseMigrateIncomingFailsExitsNonZeroWithTheReasonToo() throws Exception {
        Path disk = tmp.resolve("disk.img");
        try (var f = new java.io.RandomAccessFile(disk.toFile(), "rw")) {
            f.setLength(4 << 20);
        }
        int port = freePort();
        var dst = vm("dst", disk, "-incoming", "defer");
        try (QmpClient d = connect("dst", dst)) {
            d.execute("migrate-set-parameters", Map.of("x-io-timeout", 2000));
            d.execute("migrate-incoming", Map.of("uri", "tcp:127.0.0.1:" + port));
            try (var sock = new java.net.Socket("127.0.0.1", port)) {
                sock.getOutputStream().write("this is not a migration stream at all, not even close".getBytes());
            }
            RunOptionsIT.Result r = dst.get(60, TimeUnit.SECONDS);
            assertThat(r.exit()).as("QEMU 7.2 exits after a failed incoming migration, deferred or not").isEqualTo(1);
            assertThat(r.err()).contains("modemu: incoming migration failed:");
        }
    }
}
