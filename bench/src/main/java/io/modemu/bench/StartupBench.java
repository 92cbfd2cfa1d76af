package io.modemu.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Benchmark {@code startup}: wall time from the exec of an installed {@code bin/modemu run ...} (a 64 MiB
 * VM with an IOThread, a virtio-blk disk on it over a raw file, the disk-verify guest) until its QMP
 * monitor answers {@code query-status} with {@code running}; the monitor's unix socket is polled every
 * {@value #POLL_NANOS} ns. References measured in the same run, interleaved round by round:
 * <ul>
 * <li>a bare JVM: a main that does nothing ({@link JvmExit}) started with the launcher's JVM options
 * (read from {@code bin/modemu}), from exec to exit;</li>
 * <li>QEMU's own start to running when {@code qemu-system-riscv64} is installed: {@code -machine virt -m 64M}
 * with OpenSBI and U-Boot, a virtio-blk disk over the same kind of raw file, the same QMP polling (TCG's
 * virtio-mmio has no ioeventfd, so QEMU's disk cannot sit on an IOThread).</li>
 * </ul>
 * The modemu figure is the installation as unpacked ({@code MODEMU_AOT=off}); unless {@code --aot=off},
 * the launcher is also measured after {@code bin/modemu aot-cache} made the installation's JDK AOT cache,
 * which it then starts from (what a user gets after that one command).
 *
 * <p>Options: {@code --home=DIR} (the installation, required), {@code --runs=N} (5, medians),
 * {@code --warmup=N} (1 round not counted), {@code --qemu=auto|off}, {@code --aot=auto|off},
 * {@code --classpath=JAR} (where {@link JvmExit} is; default this class's jar). Prints {@code key=value} lines.
 */
public final class StartupBench {
    static final long POLL_NANOS = 200_000;
    private static final long TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(120);
    private static final Pattern RUNNING = Pattern.compile("\"status\"\\s*:\\s*\"running\"");
    private static final String OPENSBI = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin";
    private static final String UBOOT = "/usr/lib/u-boot/qemu-riscv64_smode/uboot.elf";

    private final PrintStream out = System.out;
    private final Path home;
    private final Path work;
    private final Path disk;
    private final String javaBin;
    private int seq;

    private StartupBench(Path home, Path work) throws IOException {
        this.home = home;
        this.work = work;
        this.disk = work.resolve("disk.img");
        this.javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        // a 64 MiB raw image, sparse
        try (FileChannel ch = FileChannel.open(disk, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(1), (64L << 20) - 1);
        }
    }

    public static void main(String[] args) throws Exception {
        Path home = null;
        int runs = 5;
        int warmup = 1;
        String qemu = "auto";
        String aot = "auto";
        String classpath = null;
        for (String a : args) {
            String[] kv = a.replaceFirst("^--", "").split("=", 2);
            String v = kv.length > 1 ? kv[1] : "";
            switch (kv[0]) {
                case "home" -> home = Path.of(v).toAbsolutePath();
                case "runs" -> runs = Integer.parseInt(v);
                case "warmup" -> warmup = Integer.parseInt(v);
                case "qemu" -> qemu = v;
                case "aot" -> aot = v;
                case "classpath" -> classpath = v;
                default -> throw new IllegalArgumentException("unknown option '" + a + "' (see the class comment of " + StartupBench.class.getName() + ")");
            }
        }
        if (home == null || !Files.isExecutable(home.resolve("bin/modemu"))) {
            throw new IllegalArgumentException("--home=DIR must name an unpacked installation with bin/modemu (got " + home + ")");
        }
        if (classpath == null) {
            classpath = Path.of(JvmExit.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
        }
        Path work = Files.createTempDirectory("modemu-startup-");
        try {
            new StartupBench(home, work).run(runs, warmup, qemu, aot, classpath);
        } finally {
            try (var s = Files.walk(work)) {
                s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    private void line(String key, Object value) {
        out.println(key + "=" + value);
        out.flush();
    }

    private void run(int runs, int warmup, String qemuMode, String aotMode, String classpath) throws Exception {
        String launcher = Files.readString(home.resolve("bin/modemu"));
        List<String> jvmOptions = launcherJvmOptions(launcher);
        boolean qemu = !qemuMode.equals("off") && onPath("qemu-system-riscv64") && Files.isRegularFile(Path.of(OPENSBI)) && Files.isRegularFile(Path.of(UBOOT));
        line("bench", "startup");
        line("runs", runs);
        line("cpus", Runtime.getRuntime().availableProcessors());
        line("java", System.getProperty("java.version"));
        line("poll_us", POLL_NANOS / 1000);
        line("modemu_vm", "-m 64M, IOThread, virtio-blk on it over a 64 MiB raw file, guest disk-verify");
        line("bare_jvm_options", String.join(" ", jvmOptions));
        line("qemu_vm", qemu ? "qemu-system-riscv64 -machine virt -m 64M, OpenSBI + U-Boot, virtio-blk-device over a 64 MiB raw file (no IOThread: TCG virtio-mmio has no ioeventfd)"
                : "not run (" + (qemuMode.equals("off") ? "--qemu=off" : "install qemu-system-misc opensbi u-boot-qemu") + ")");

        boolean aot = !aotMode.equals("off");
        if (!aot) {
            line("modemu_aot", "not measured (--aot=off)");
        } else {
            long t = makeAotCache();
            line("modemu_aot", "also measured starting from the installation's AOT cache, made here by 'bin/modemu aot-cache' ("
                    + TimeUnit.NANOSECONDS.toMillis(t) + " ms)");
        }

        List<Long> bare = new ArrayList<>();
        List<Long> modemu = new ArrayList<>();
        List<Long> modemuSocket = new ArrayList<>();
        List<Long> modemuAot = new ArrayList<>();
        List<Long> qemuRunning = new ArrayList<>();
        for (int round = -warmup; round < runs; round++) {
            long b = bareJvm(jvmOptions, classpath);
            long[] m = modemu("off");
            long[] a = aot ? modemu("auto") : null;
            long[] q = qemu ? qemu() : null;
            if (round < 0) {
                continue;
            }
            int r = round + 1;
            bare.add(b);
            line("run" + r + "_bare_jvm_ms", ms(b));
            modemu.add(m[0]);
            modemuSocket.add(m[1]);
            line("run" + r + "_modemu_running_ms", ms(m[0]));
            if (a != null) {
                modemuAot.add(a[0]);
                line("run" + r + "_modemu_aot_running_ms", ms(a[0]));
            }
            if (q != null) {
                qemuRunning.add(q[0]);
                line("run" + r + "_qemu_running_ms", ms(q[0]));
            }
        }
        line("bare_jvm_ms", ms(median(bare)));
        line("modemu_running_ms", ms(median(modemu)));
        line("modemu_monitor_up_ms", ms(median(modemuSocket)));
        line("modemu_vs_bare_jvm", ratio(median(modemu), median(bare)));
        if (!modemuAot.isEmpty()) {
            line("modemu_aot_running_ms", ms(median(modemuAot)));
            line("modemu_aot_vs_bare_jvm", ratio(median(modemuAot), median(bare)));
        }
        if (!qemuRunning.isEmpty()) {
            line("qemu_running_ms", ms(median(qemuRunning)));
            line("modemu_vs_qemu", ratio(median(modemu), median(qemuRunning)));
            if (!modemuAot.isEmpty()) {
                line("modemu_aot_vs_qemu", ratio(median(modemuAot), median(qemuRunning)));
            }
        }
        line("note", "medians of " + runs + " rounds, each round: bare JVM, modemu" + (modemuAot.isEmpty() ? "" : ", modemu with AOT cache")
                + (qemuRunning.isEmpty() ? "" : ", QEMU") + "; wall clock from exec to query-status == running (bare JVM: to exit)");
    }

    /** The JVM options of the launcher's exec line, without those that name its own files. */
    static List<String> launcherJvmOptions(String launcher) {
        Matcher m = Pattern.compile("\\$launch \"\\$JAVA\"(.*?)\"\\$@\"", Pattern.DOTALL).matcher(launcher);
        if (!m.find()) {
            throw new IllegalStateException("bin/modemu has no line '$launch \"$JAVA\" ... \"$@\"': cannot read the launcher's JVM options");
        }
        List<String> opts = new ArrayList<>();
        for (String t : m.group(1).replace("\\\n", " ").trim().split("\\s+")) {
            String o = t.startsWith("'") && t.endsWith("'") && t.length() > 1 ? t.substring(1, t.length() - 1) : t;
            if (o.startsWith("-") && !o.contains("$")) {
                opts.add(o);
            }
        }
        return opts;
    }

    private long bareJvm(List<String> jvmOptions, String classpath) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBin);
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("-cp", classpath, JvmExit.class.getName()));
        Path log = work.resolve("bare-" + (++seq) + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        long t0 = System.nanoTime();
        Process p = pb.start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("the bare JVM did not exit in 120 s: " + cmd);
        }
        long t = System.nanoTime() - t0;
        if (p.exitValue() != 0) {
            throw new IllegalStateException("the bare JVM exited with " + p.exitValue() + ": " + Files.readString(log));
        }
        return t;
    }

    /** Starts the installed modemu; returns {time to running, time until the monitor accepted}. */
    /** @param aot the launcher's MODEMU_AOT: off, or auto (start from the installation's cache) */
    private long[] modemu(String aot) throws Exception {
        Path sock = work.resolve("modemu-" + (++seq) + ".sock");
        List<String> cmd = List.of(home.resolve("bin/modemu").toString(), "run", "-name", "startup", "-m", "64M",
                "-object", "iothread,id=io0", "-drive", "file=" + disk + ",format=raw,if=none,id=d0",
                "-device", "virtio-blk-device,drive=d0,iothread=io0", "-guest", "disk-verify",
                "-qmp", "unix:" + sock + ",server=on,wait=off", "-display", "none", "-serial", "none");
        Map<String, String> env = Map.of("MODEMU_OPTS", "", "MODEMU_AOT", aot);
        return startToRunning("modemu", cmd, env, sock);
    }

    private long[] qemu() throws Exception {
        Path sock = work.resolve("qemu-" + (++seq) + ".sock");
        List<String> cmd = List.of("qemu-system-riscv64", "-machine", "virt", "-m", "64M", "-display", "none", "-monitor", "none",
                "-serial", "null", "-bios", OPENSBI, "-kernel", UBOOT,
                "-drive", "file=" + disk + ",format=raw,if=none,id=d0,file.locking=off", "-device", "virtio-blk-device,drive=d0",
                "-qmp", "unix:" + sock + ",server=on,wait=off");
        return startToRunning("qemu", cmd, Map.of(), sock);
    }

    /** Runs {@code bin/modemu aot-cache} in the installation; returns how long it took. */
    private long makeAotCache() throws Exception {
        long t0 = System.nanoTime();
        Path log = work.resolve("aot-cache.log");
        ProcessBuilder pb = new ProcessBuilder(home.resolve("bin/modemu").toString(), "aot-cache").redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("MODEMU_PLUGINS");
        pb.environment().remove("MODEMU_OPTS");
        pb.environment().remove("MODEMU_AOT_CACHE");
        Process p = pb.start();
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("bin/modemu aot-cache did not exit in 300 s; see " + log);
        }
        if (p.exitValue() != 0 || !Files.isRegularFile(home.resolve("lib/modemu.aot"))) {
            throw new IllegalStateException("bin/modemu aot-cache failed (exit " + p.exitValue() + "): " + tail(log));
        }
        return System.nanoTime() - t0;
    }

    /** Exec to running: {time to running, time until the monitor accepted}; then quits the VM. */
    private long[] startToRunning(String what, List<String> cmd, Map<String, String> env, Path sock) throws Exception {
        Path log = work.resolve(what + "-" + seq + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("MODEMU_PLUGINS");
        pb.environment().remove("MODEMU_OPTS");
        pb.environment().putAll(env);
        long t0 = System.nanoTime();
        Process p = pb.start();
        long deadline = t0 + TIMEOUT_NANOS;
        long running;
        long up;
        try (Qmp q = Qmp.await(sock, p, deadline, log)) {
            up = System.nanoTime() - t0;
            running = q.awaitRunning(p, deadline, log) - t0;
            q.quit();
        } catch (RuntimeException | IOException e) {
            p.destroyForcibly();
            throw e;
        }
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException(what + " did not exit within 60 s of quit");
        }
        return new long[] {running, up};
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    private static boolean onPath(String program) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, program))) {
                return true;
            }
        }
        return false;
    }

    private static long median(List<Long> xs) {
        long[] a = xs.stream().mapToLong(Long::longValue).sorted().toArray();
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }

    private static String ms(long nanos) {
        return String.format(Locale.ROOT, "%.1f", nanos / 1e6);
    }

    private static String ratio(long a, long b) {
        return String.format(Locale.ROOT, "%.2f", (double) a / b);
    }

    /** A minimal QMP client over a unix socket: line-delimited JSON, events skipped. */
    private static final class Qmp implements AutoCloseable {
        private final SocketChannel ch;
        private final ByteBuffer in = ByteBuffer.allocate(1 << 16);
        private final StringBuilder pending = new StringBuilder();

        private Qmp(SocketChannel ch) {
            this.ch = ch;
        }

        /** Polls the socket until it accepts, reads the greeting and negotiates capabilities. */
        static Qmp await(Path sock, Process p, long deadline, Path log) throws IOException {
            UnixDomainSocketAddress addr = UnixDomainSocketAddress.of(sock);
            while (true) {
                if (Files.exists(sock)) {
                    SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                    try {
                        ch.connect(addr);
                        Qmp q = new Qmp(ch);
                        String greeting = q.readLine();
                        if (!greeting.contains("\"QMP\"")) {
                            throw new IllegalStateException("not a QMP greeting: " + greeting);
                        }
                        q.command("{\"execute\":\"qmp_capabilities\"}");
                        return q;
                    } catch (IOException e) {
                        ch.close();
                    }
                }
                if (!p.isAlive()) {
                    throw new IllegalStateException("the process exited (" + p.exitValue() + ") before its monitor was up: " + tail(log));
                }
                if (System.nanoTime() - deadline > 0) {
                    throw new IllegalStateException("no monitor on " + sock + " within the timeout: " + tail(log));
                }
                LockSupport.parkNanos(POLL_NANOS);
            }
        }

        /** Asks query-status until it says running; returns the nanoTime of that reply. */
        long awaitRunning(Process p, long deadline, Path log) throws IOException {
            while (true) {
                String r = command("{\"execute\":\"query-status\"}");
                long t = System.nanoTime();
                if (RUNNING.matcher(r).find()) {
                    return t;
                }
                if (!p.isAlive() || System.nanoTime() - deadline > 0) {
                    throw new IllegalStateException("the VM did not reach running (last: " + r + "): " + tail(log));
                }
                LockSupport.parkNanos(POLL_NANOS);
            }
        }

        /** Asks the process to quit; it may close the connection before its reply. */
        void quit() {
            try {
                command("{\"execute\":\"quit\"}");
            } catch (IOException e) {
                // closed on the way out: the exit is waited for by the caller
            }
        }

        String command(String json) throws IOException {
            ByteBuffer b = ByteBuffer.wrap((json + "\n").getBytes(StandardCharsets.UTF_8));
            while (b.hasRemaining()) {
                ch.write(b);
            }
            while (true) {
                String line = readLine();
                if (!line.contains("\"event\"")) {
                    if (line.contains("\"error\"")) {
                        throw new IllegalStateException(json + ": " + line);
                    }
                    return line;
                }
            }
        }

        private String readLine() throws IOException {
            while (true) {
                int nl = pending.indexOf("\n");
                if (nl >= 0) {
                    String line = pending.substring(0, nl).trim();
                    pending.delete(0, nl + 1);
                    if (!line.isEmpty()) {
                        return line;
                    }
                    continue;
                }
                in.clear();
                int n = ch.read(in);
                if (n < 0) {
                    throw new IOException("the monitor closed the connection");
                }
                pending.append(new String(in.array(), 0, n, StandardCharsets.UTF_8));
            }
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }
}
