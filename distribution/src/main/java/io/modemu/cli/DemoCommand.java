package io.modemu.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.modemu.monitor.QmpClient;
import io.modemu.options.Sizes;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code modemu demo}: the one-command tour. A source VM (RAM, an IOThread, a virtio-blk disk on a raw
 * image, the disk-verify guest writing and verifying blocks while dirtying memory) and a destination
 * process; a live migration over TCP with a progress bar; then back over rdma-sim when that plugin is
 * installed; the guest's data checked at each destination. Exits 0 when every hop completed and the
 * guest verified its data, non-zero with the reason otherwise.
 */
@Command(name = "demo", description = {"Run the demo: live-migrate a VM with a virtio-blk disk on an IOThread over TCP",
        "(then back over rdma-sim when installed) while its guest writes and verifies data."})
public final class DemoCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--short", description = "a small, quick run (for tests)")
    boolean quick;

    @Option(names = "--memory", paramLabel = "SIZE", description = "guest RAM (default 1G, 128M with --short)")
    String memory;

    @Option(names = "--dirty-rate", paramLabel = "BYTES/S", description = "how fast the guest dirties RAM (default 32M)")
    String dirtyRate = "32M";

    @Option(names = "--keep", description = "keep the work directory and logs")
    boolean keep;

    private PrintWriter out;
    private final List<Process> processes = new ArrayList<>();
    private Path work;

    private static final String BOLD = "\u001b[1m";
    private static final String GREEN = "\u001b[32m";
    private static final String RED = "\u001b[31m";
    private static final String DIM = "\u001b[2m";
    private static final String RESET = "\u001b[0m";

    private String c(String style, String text) {
        return System.console() != null ? style + text + RESET : text;
    }

    @Override
    public Integer call() throws Exception {
        out = spec.commandLine().getOut();
        String home = System.getProperty("modemu.home");
        if (home == null) {
            out.println("modemu demo: run it from an installation (bin/modemu demo): modemu.home is not set");
            return 2;
        }
        Path bin = Path.of(home, "bin", "modemu");
        String ram = memory != null ? memory : quick ? "128M" : "1G";
        work = Files.createTempDirectory("modemu-demo-");
        Runtime.getRuntime().addShutdownHook(new Thread(this::cleanup));
        int step = 0;
        boolean rdma = pluginInstalled(home, "scheme:rdma-sim");
        int steps = rdma ? 6 : 5;
        try {
            out.println(c(BOLD, "Modemu demo") + ": live migration of a VM whose virtio-blk disk runs on an IOThread, with I/O in flight");
            out.println(c(DIM, "  work directory " + work));

            Path disk = work.resolve("disk.img");
            try (RandomAccessFile f = new RandomAccessFile(disk.toFile(), "rw")) {
                f.setLength(quick ? 16L << 20 : 256L << 20);
            }
            out.printf("[%d/%d] disk image %s (%s, raw)%n", ++step, steps, disk.getFileName(), Sizes.human(Files.size(disk)));

            String guest = "disk-verify,blocks=" + (quick ? 512 : 8192) + ",queue-depth=16,dirty-rate=" + dirtyRate
                    + ",dirty-size=" + (quick ? "8M" : "64M");
            Vm src = start("source", bin, ram, disk, guest, null);
            out.printf("[%d/%d] source VM: %s RAM, IOThread io0, virtio-blk vd0 on io0, guest disk-verify dirtying %s/s%n",
                    ++step, steps, ram, dirtyRate);
            waitGuest(src, quick ? 1 : 3);
            out.printf("      guest so far: %s%n", guestLine(src.qmp.execute("query-guest", Map.of())));

            int port = freePort();
            Vm dst = start("destination", bin, ram, disk, guest, "tcp:127.0.0.1:" + port);
            out.printf("[%d/%d] destination VM waiting on tcp:127.0.0.1:%d%n", ++step, steps, port);

            out.printf("[%d/%d] migrating over TCP%n", ++step, steps);
            JsonNode tcp = migrate(src, "tcp:127.0.0.1:" + port);
            check(dst, "TCP");
            src.stop();

            JsonNode back = null;
            if (rdma) {
                int rport = freePort();
                Vm dst2 = start("destination-2", bin, ram, disk, guest, "rdma-sim:127.0.0.1:" + rport);
                out.printf("[%d/%d] back over rdma-sim to a fresh VM on rdma-sim:127.0.0.1:%d%n", ++step, steps, rport);
                back = migrate(dst, "rdma-sim:127.0.0.1:" + rport);
                check(dst2, "rdma-sim");
                dst.stop();
                dst2.stop();
            } else {
                dst.stop();
            }
            out.printf("[%d/%d] %s%n", ++step, steps, c(GREEN + BOLD, "OK") + ": every hop completed and the guest verified its data at each destination");
            out.println();
            out.println(c(BOLD, "hop        total      downtime   throughput     passes"));
            out.println(row("tcp", tcp));
            if (back != null) {
                out.println(row("rdma-sim", back));
            } else {
                out.println(c(DIM, "rdma-sim   (plugin migration-rdma-sim not installed: hop skipped)"));
            }
            return 0;
        } catch (DemoFailure e) {
            out.println(c(RED + BOLD, "FAILED") + ": " + e.getMessage());
            keep = true;
            out.println("  logs are in " + work);
            return 1;
        } finally {
            cleanup();
        }
    }

    private static String row(String name, JsonNode i) {
        return String.format(Locale.ROOT, "%-10s %7d ms  %6d ms   %8.0f Mbit/s  %5d", name, i.path("total-time").asLong(),
                i.path("downtime").asLong(), i.path("ram").path("mbps").asDouble(), i.path("ram").path("dirty-sync-count").asLong());
    }

    private static boolean pluginInstalled(String home, String contribution) {
        try (var s = Files.list(Path.of(home, "plugins"))) {
            for (Path p : s.filter(f -> f.toString().endsWith(".jar")).toList()) {
                try (var jar = new java.util.jar.JarFile(p.toFile())) {
                    String v = jar.getManifest().getMainAttributes().getValue("Modemu-Contributes");
                    if (v != null && List.of(v.split("[\\s,]+")).contains(contribution)) {
                        String disabled = Files.exists(Path.of(home, "plugins", "disabled.txt")) ? Files.readString(Path.of(home, "plugins", "disabled.txt")) : "";
                        String id = jar.getManifest().getMainAttributes().getValue("Plugin-Id");
                        return disabled.lines().noneMatch(l -> l.trim().equals(id));
                    }
                }
            }
        } catch (IOException e) {
            return false;
        }
        return false;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static final class DemoFailure extends Exception {
        private static final long serialVersionUID = 1L;

        DemoFailure(String m) {
            super(m);
        }
    }

    final class Vm {
        final String name;
        final Process process;
        final Path log;
        QmpClient qmp;

        Vm(String name, Process process, Path log) {
            this.name = name;
            this.process = process;
            this.log = log;
        }

        void stop() {
            try {
                if (qmp != null) {
                    qmp.execute("quit", Map.of());
                    qmp.close();
                }
                process.waitFor(10, TimeUnit.SECONDS);
            } catch (IOException | InterruptedException | RuntimeException e) {
                process.destroy();
            }
        }

        String tail() {
            try {
                List<String> l = Files.readAllLines(log);
                return String.join("\n    ", l.subList(Math.max(0, l.size() - 8), l.size()));
            } catch (IOException e) {
                return "(no log)";
            }
        }
    }

    private Vm start(String name, Path bin, String ram, Path disk, String guest, String incoming) throws Exception {
        Path sock = work.resolve(name + ".sock");
        Path log = work.resolve(name + ".log");
        Path mem = Path.of("/dev/shm").toFile().isDirectory() ? Path.of("/dev/shm", work.getFileName() + "-" + name + ".ram") : work.resolve(name + ".ram");
        List<String> cmd = new ArrayList<>(List.of(bin.toString(), "run", "-name", name));
        if (incoming != null && incoming.startsWith("rdma-sim:")) {
            // the rdma-sim destination exposes guest RAM to one-sided writes: a shared file, faulted in up front
            cmd.addAll(List.of("-object", "memory-backend-file,id=ram0,size=" + ram + ",mem-path=" + mem + ",share=on,prealloc=on",
                    "-machine", "virt,memory-backend=ram0"));
        } else {
            cmd.addAll(List.of("-m", ram));
        }
        cmd.addAll(List.of("-object", "iothread,id=io0",
                "-drive", "file=" + disk + ",format=raw,if=none,id=d0",
                "-device", "virtio-blk-device,drive=d0,iothread=io0,id=vd0",
                "-guest", guest,
                "-qmp", "unix:" + sock + ",server=on,wait=off"));
        if (incoming != null) {
            cmd.add("-incoming");
            cmd.add(incoming);
        }
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        processes.add(p);
        Vm vm = new Vm(name, p, log);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) {
                throw new DemoFailure("the " + name + " VM exited with " + p.exitValue() + ":\n    " + vm.tail());
            }
            if (Files.exists(sock)) {
                try {
                    vm.qmp = QmpClient.open(sock.toString());
                    return vm;
                } catch (IOException e) {
                    // not accepting yet
                }
            }
            Thread.sleep(50);
        }
        throw new DemoFailure("the " + name + " VM did not open its QMP socket within 60 s:\n    " + vm.tail());
    }

    private void waitGuest(Vm vm, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (vm.qmp.execute("query-guest", Map.of()).path("verified").asLong() == 0) {
            if (System.nanoTime() > deadline) {
                throw new DemoFailure("the guest on " + vm.name + " verified nothing within 30 s: " + vm.qmp.execute("query-guest", Map.of()));
            }
            Thread.sleep(50);
        }
        Thread.sleep(seconds * 1000L);
    }

    private static String guestLine(JsonNode g) {
        return String.format(Locale.ROOT, "%,d blocks verified, %,d failed, %,d writes, %s of RAM dirtied", g.path("verified").asLong(),
                g.path("failed").asLong(), g.path("writes").asLong(), Sizes.human(g.path("dirty-bytes").asLong()));
    }

    private JsonNode migrate(Vm src, String uri) throws Exception {
        // QEMU's default cap is 128 MiB/s; the demo migrates at link speed, as the QEMU baseline does
        src.qmp.execute("migrate-set-parameters", Map.of("max-bandwidth", 100_000_000_000L));
        src.qmp.execute("migrate", Map.of("uri", uri));
        MigrateCommand.ProgressBar bar = new MigrateCommand.ProgressBar(out, System.console() != null);
        JsonNode info;
        long lastLine = 0;
        while (true) {
            info = src.qmp.execute("query-migrate", Map.of());
            if (bar.fancy()) {
                bar.render(info);
            } else if (System.nanoTime() - lastLine > 500_000_000L) {
                out.println("      " + MigrateCommand.ProgressBar.line(info));
                lastLine = System.nanoTime();
            }
            String s = info.path("status").asText();
            if (s.equals("completed") || s.equals("failed") || s.equals("cancelled")) {
                break;
            }
            Thread.sleep(100);
        }
        bar.finish();
        if (!info.path("status").asText().equals("completed")) {
            throw new DemoFailure("migration to " + uri + " " + info.path("status").asText() + ": " + info.path("error-desc").asText());
        }
        out.printf("      %s%n", String.format(Locale.ROOT, "total %d ms, downtime %d ms, %.0f Mbit/s, %d passes, %s sent",
                info.path("total-time").asLong(), info.path("downtime").asLong(), info.path("ram").path("mbps").asDouble(),
                info.path("ram").path("dirty-sync-count").asLong(), Sizes.human(info.path("ram").path("transferred").asLong())));
        String status = src.qmp.execute("query-status", Map.of()).path("status").asText();
        if (!status.equals("postmigrate")) {
            throw new DemoFailure("the source is '" + status + "' after the migration, not 'postmigrate'");
        }
        return info;
    }

    /** The destination runs, and its guest carries on: more blocks verified, none failed. */
    private void check(Vm dst, String hop) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        String status;
        while (!(status = dst.qmp.execute("query-status", Map.of()).path("status").asText()).equals("running")) {
            if (System.nanoTime() > deadline) {
                throw new DemoFailure("the destination of the " + hop + " hop is '" + status + "', not running");
            }
            Thread.sleep(50);
        }
        JsonNode before = dst.qmp.execute("query-guest", Map.of());
        Thread.sleep(quick ? 500 : 1500);
        JsonNode after = dst.qmp.execute("query-guest", Map.of());
        // a generation writes every block before it reads any back, so on a busy host a window may see only
        // writes: wait (up to 10 s) until blocks are verified again, which a stuck guest never does
        long carryOnDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (after.path("failed").asLong() == 0 && after.path("verified").asLong() <= before.path("verified").asLong()
                && System.nanoTime() < carryOnDeadline) {
            Thread.sleep(100);
            after = dst.qmp.execute("query-guest", Map.of());
        }
        if (after.path("failed").asLong() != 0) {
            throw new DemoFailure("the guest found " + after.path("failed").asLong() + " corrupt blocks after the " + hop + " hop (first: "
                    + after.path("first-failed-block") + ")");
        }
        if (after.path("verified").asLong() <= before.path("verified").asLong()) {
            throw new DemoFailure("the guest did not carry on after the " + hop + " hop (no block verified in 10 s): " + after);
        }
        out.printf("      destination running; guest carries on: %s%n", guestLine(after));
    }

    private void cleanup() {
        for (Process p : processes) {
            p.destroyForcibly();
        }
        processes.clear();
        try {
            if (work != null) {
                try (var s = Files.list(Path.of("/dev/shm"))) {
                    for (Path p : s.filter(f -> f.getFileName().toString().startsWith(work.getFileName().toString())).toList()) {
                        Files.deleteIfExists(p);
                    }
                } catch (IOException ignored) {
                    // no /dev/shm
                }
                if (!keep) {
                    WorkDirs.delete(work);
                }
            }
        } catch (IOException e) {
            // best effort
        }
    }
}
