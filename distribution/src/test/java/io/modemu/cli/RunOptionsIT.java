package io.modemu.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.modemu.monitor.QmpClient;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code modemu run} option parsing, good and bad, with the installation's real plugins. */
class RunOptionsIT {
    static final Path PLUGINS = Path.of(System.getProperty("modemu.dist.dir"), "plugins");

    @TempDir
    Path tmp;

    record Result(int exit, String out, String err) {
    }

    static Result run(String... args) {
        List<String> a = new ArrayList<>(List.of(args));
        a.add(1, "--plugins-dir");
        a.add(2, PLUGINS.toString());
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int rc = Main.execute(new PrintWriter(out, true), new PrintWriter(err, true), a.toArray(String[]::new));
        return new Result(rc, out.toString(), err.toString());
    }

    @Test
    void aFullCommandLineBuildsTheVmAndQuitsCleanly() throws Exception {
        Path img = Files.write(tmp.resolve("disk.img"), new byte[1 << 20]);
        Path img2 = Files.write(tmp.resolve("disk2.img"), new byte[1 << 20]);
        Path blob = Files.write(tmp.resolve("blob.bin"), new byte[] {1, 2, 3, 4});
        Path sock = tmp.resolve("qmp.sock");
        Path pid = tmp.resolve("vm.pid");
        CompletableFuture<Result> vm = CompletableFuture.supplyAsync(() -> run("run",
                "-machine", "virt,memory=64M", "-name", "guest=test", "-object", "iothread,id=io0",
                "-drive", "file=" + img + ",format=raw,if=none,id=d0,cache=none",
                "-blockdev", "driver=null-co,node-name=n0,size=16M",
                "-blockdev", "{\"driver\": \"raw\", \"node-name\": \"d1\", \"read-only\": true, \"file\": {\"driver\": \"file\", \"filename\": \"" + img2 + "\"}}",
                "-device", "loader,file=" + blob + ",addr=0x80001000",
                "-qmp", "unix:" + sock + ",server=on,wait=off", "-S", "-nodefaults", "-pidfile", pid.toString(),
                "-serial", "none", "-display", "none"));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(pid) && System.nanoTime() < deadline && !vm.isDone()) {
            Thread.sleep(20);
        }
        assertThat(vm.isDone()).as("run still going (%s)", vm.isDone() ? vm.join() : "").isFalse();
        assertThat(Files.readString(pid).strip()).isEqualTo(String.valueOf(ProcessHandle.current().pid()));
        try (QmpClient c = QmpClient.open(sock.toString())) {
            assertThat(c.execute("query-status", Map.of()).path("status").asText()).isEqualTo("prelaunch");
            assertThat(c.execute("query-name", Map.of()).path("name").asText()).isEqualTo("test");
            JsonNode block = c.execute("query-block", Map.of());
            assertThat(block).hasSize(3);
            assertThat(block.get(0).path("device").asText()).isEqualTo("d0");
            assertThat(block.get(1).path("inserted").path("drv").asText()).isEqualTo("null-co");
            assertThat(block.get(2).path("inserted").path("ro").asBoolean()).isTrue();
            assertThat(c.execute("query-iothreads", Map.of()).get(0).path("id").asText()).isEqualTo("io0");
            JsonNode plugins = c.execute("query-plugins", Map.of());
            assertThat(plugins.toString()).contains("\"id\":\"file\"").contains("\"module\":\"io.modemu.block.file\"")
                    .contains("\"block-drivers\":[\"file\",\"raw\"]").contains("\"id\":\"virtio-blk\"");
            assertThat(c.execute("query-guest", Map.of()).path("loaded").asBoolean()).isFalse();
            c.execute("cont", Map.of());
            assertThat(c.execute("query-status", Map.of()).path("status").asText()).isEqualTo("running");
            c.execute("quit", Map.of());
            JsonNode shutdown = c.awaitEvent("SHUTDOWN");
            assertThat(shutdown.path("data").path("reason").asText()).isEqualTo("host-qmp-quit");
        }
        Result r = vm.get(30, TimeUnit.SECONDS);
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(pid).doesNotExist();
        assertThat(sock).doesNotExist();
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "-m lots                                                   | -m: 'lots' is not a size",
        "-m 1GiB                                                   | -m: '1GiB' is not a size (write K, M, G, T",
        "-machine pc                                               | -machine: unknown machine type 'pc' (supported: virt)",
        "-machine virt,accel=kvm                                   | -machine: unknown option 'accel'",
        "-object iothread                                          | -object: option 'id' is required",
        "-object throttle-group,id=t0                              | -object: unknown object type 'throttle-group'",
        "-drive file=/nonexistent.img,format=raw,if=none,id=d0     | -drive d0: cannot open '/nonexistent.img': no such file",
        "-drive file=/x.img,format=qcow2,if=none,id=d0             | -drive d0: format=qcow2 is not supported",
        "-drive file=/x.img,if=virtio,id=d0                        | -drive: if=virtio is not supported: use if=none",
        "-drive file=/x.img,format=raw,if=none                     | -drive: option 'id' is required",
        "-drive driver=null-co,id=n0,sise=1G                       | -drive n0: unknown option 'sise'",
        "-drive driver=null-co,id=n0,size=big                      | -drive n0: option 'size': 'big' is not a size",
        "-drive driver=qcow2,id=q0                                 | no block driver 'qcow2': no loaded plugin provides it",
        "-blockdev driver=null-co                                  | -blockdev: node-name is required",
        "-blockdev {\"driver\":\"null-co\"                         | -blockdev: invalid JSON",
        "-device e1000,id=net0                                     | no device type 'e1000'",
        "-device loader,file=/nonexistent.bin,addr=0x80000000      | -device loader: cannot read '/nonexistent.bin': no such file",
        "-qmp tcp:0.0.0.0:0,server=on,wait=off                     | -qmp: 0.0.0.0 is not a loopback address",
        "-pidfile /nonexistent-dir/vm.pid                          | -pidfile: cannot write /nonexistent-dir/vm.pid",
        "-serial pty                                               | -serial: unsupported backend 'pty'",
        "-display gtk                                              | -display: only 'none' is supported",
        "-frobnicate                                               | Unknown option: '-frobnicate'",
        "-incoming nowhere                                         | 'nowhere' is not a migration URI",
    })
    void aBadOptionIsOneLineNamingTheCulpritAndExitCodeOne(String options, String expected) {
        List<String> args = new ArrayList<>();
        args.add("run");
        args.addAll(List.of(options.trim().split(" ")));
        Result r = run(args.toArray(String[]::new));
        assertThat(r.exit()).as(r.err()).isEqualTo(1);
        String first = r.err().lines().findFirst().orElse("");
        assertThat(first).startsWith("modemu: ").contains(expected.trim());
    }

    @Test
    void anOptionWhosePluginIsDisabledSaysWhichPluginWouldProvideIt() throws Exception {
        Path plugins = Files.createDirectories(tmp.resolve("plugins"));
        try (var s = Files.list(PLUGINS)) {
            for (Path p : s.toList()) {
                Files.copy(p, plugins.resolve(p.getFileName()));
            }
        }
        Files.writeString(plugins.resolve("disabled.txt"), "virtio-blk\nmigration-tcp\n");
        StringWriter err = new StringWriter();
        int rc = Main.execute(new PrintWriter(new StringWriter()), new PrintWriter(err, true), "run", "--plugins-dir", plugins.toString(),
                "-drive", "driver=null-co,id=d0", "-device", "virtio-blk-device,drive=d0");
        assertThat(rc).isEqualTo(1);
        assertThat(err.toString().strip()).isEqualTo("modemu: no device type 'virtio-blk-device': it is provided by plugin 'virtio-blk', "
                + "which is disabled (enable it: modemu plugins enable virtio-blk)");
        StringWriter err2 = new StringWriter();
        rc = Main.execute(new PrintWriter(new StringWriter()), new PrintWriter(err2, true), "run", "--plugins-dir", plugins.toString(),
                "-incoming", "tcp:127.0.0.1:0");
        assertThat(rc).isEqualTo(1);
        assertThat(err2.toString()).contains("no migration scheme 'tcp': it is provided by plugin 'migration-tcp', which is disabled");
    }

    @Test
    void aFailureLateInStartUpLeavesNothingHalfStarted() throws Exception {
        Path sock = tmp.resolve("qmp.sock");
        Path pid = tmp.resolve("vm.pid");
        Result r = run("run", "-qmp", "unix:" + sock + ",server=on,wait=off", "-pidfile", pid.toString(),
                "-device", "loader,file=" + Files.write(tmp.resolve("b"), new byte[8]) + ",addr=0x1000");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("does not fit in guest RAM at 0x1000");
        assertThat(sock).doesNotExist();
        assertThat(pid).doesNotExist();
    }

    @Test
    void qmpCommandTalksToARunningVm() throws Exception {
        Path sock = tmp.resolve("q.sock");
        CompletableFuture<Result> vm = CompletableFuture.supplyAsync(() -> run("run", "-qmp", "unix:" + sock + ",server=on,wait=off"));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(sock) && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        assertThat(Main.execute(new PrintWriter(out, true), new PrintWriter(err, true), "qmp", sock.toString(), "query-status")).isZero();
        assertThat(out.toString()).contains("\"status\" : \"running\"");
        StringWriter err2 = new StringWriter();
        assertThat(Main.execute(new PrintWriter(new StringWriter()), new PrintWriter(err2, true), "qmp", sock.toString(), "query-status", "bogus=1")).isEqualTo(1);
        assertThat(err2.toString().strip()).isEqualTo("modemu: GenericError: Parameter 'bogus' is unexpected");
        assertThat(Main.execute(new PrintWriter(new StringWriter()), new PrintWriter(new StringWriter()), "qmp", sock.toString(), "quit")).isZero();
        assertThat(vm.get(30, TimeUnit.SECONDS).exit()).isZero();
    }
}
