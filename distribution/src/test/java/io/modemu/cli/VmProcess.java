package io.modemu.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.modemu.monitor.QmpClient;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One real {@code bin/modemu run} process of the installation the distribution module built,
 * optionally inside a network namespace ({@code ip netns exec NS bin/modemu run ...}), with a QMP
 * unix socket (a path, so it works across namespaces) and its output in a log file. Not thread-safe.
 */
final class VmProcess implements AutoCloseable {
    static final Path DIST = Path.of(System.getProperty("modemu.dist.dir"));

    /** Threads, open file descriptors and heap of a live process. */
    record Resources(int threads, int fds, long heapAfterGcBytes, long rssBytes) {
        @Override
        public String toString() {
            return "threads " + threads + ", fds " + fds + ", heap after GC " + mib(heapAfterGcBytes) + ", RSS " + mib(rssBytes);
        }
    }

    final String name;
    final String netns;
    final Path socket;
    final Path log;
    private final Process process;
    private QmpClient qmp;

    private VmProcess(String name, String netns, Path socket, Path log, Process process) {
        this.name = name;
        this.netns = netns;
        this.socket = socket;
        this.log = log;
        this.process = process;
    }

    /**
     * Starts {@code bin/modemu run -name NAME ARGS -qmp unix:DIR/NAME.sock,...} and returns at once
     * (the JVM starts in the background; {@link #qmp()} waits for it).
     *
     * @param netns the network namespace to run in, or null for this one
     */
    static VmProcess start(String name, String netns, Path dir, List<String> args) throws IOException {
        installReaper();
        Path socket = dir.resolve(name + ".sock");
        Path log = dir.resolve(name + ".log");
        Files.deleteIfExists(socket);
        List<String> cmd = new ArrayList<>();
        if (netns != null) {
            cmd.addAll(List.of("ip", "netns", "exec", netns));
        }
        cmd.addAll(List.of(DIST.resolve("bin/modemu").toString(), "run", "-name", name));
        cmd.addAll(args);
        cmd.addAll(List.of("-qmp", "unix:" + socket + ",server=on,wait=off"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process p = pb.start();
        LIVE.add(p);
        p.onExit().thenRun(() -> LIVE.remove(p));
        return new VmProcess(name, netns, socket, log, p);
    }

    /** What this JVM started and is still running, killed if the JVM is told to stop before the tests close them. */
    private static final java.util.Set<Process> LIVE = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private static boolean reaper;

    private static synchronized void installReaper() {
        if (!reaper) {
            reaper = true;
            Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroyForcibly), "modemu-process-reaper"));
        }
    }

    /** The java process ({@code ip netns exec} and the launcher both exec it, so this is its pid). */
    long pid() {
        return process.pid();
    }

    boolean alive() {
        return process.isAlive();
    }

    /** The QMP client, connected on first use (waiting up to a minute for the JVM to open the socket). */
    QmpClient qmp() throws IOException, InterruptedException {
        if (qmp != null) {
            return qmp;
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        IOException last = null;
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException(name + " exited (code " + process.exitValue() + ") before opening its QMP socket:\n" + logText());
            }
            if (Files.exists(socket)) {
                try {
                    qmp = QmpClient.open(socket.toString());
                    return qmp;
                } catch (IOException e) {
                    last = e; // not accepting yet
                }
            }
            Thread.sleep(20);
        }
        throw new IllegalStateException(name + " did not open its QMP socket within 60 s" + (last == null ? "" : ": " + last.getMessage()));
    }

    /** Runs a QMP command and returns its {@code return} value. */
    JsonNode exec(String command, Map<String, ?> args) throws IOException, InterruptedException {
        JsonNode r = qmp().execute(command, args);
        qmp.takeEvents(); // nobody reads them here: do not let them pile up in a long run
        return r;
    }

    JsonNode exec(String command) throws IOException, InterruptedException {
        return exec(command, Map.of());
    }

    String status() throws IOException, InterruptedException {
        return exec("query-status").path("status").asText();
    }

    JsonNode migration() throws IOException, InterruptedException {
        return exec("query-migrate");
    }

    JsonNode guest() throws IOException, InterruptedException {
        return exec("query-guest");
    }

    /** Polls {@code query} until {@code done} holds, failing after {@code timeout} with the last value. */
    JsonNode await(String what, Duration timeout, Query query, Predicate<JsonNode> done) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        JsonNode last = query.get(this);
        while (!done.test(last)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(name + ": " + what + " not reached within " + timeout.toSeconds() + " s; last: " + last);
            }
            Thread.sleep(10);
            last = query.get(this);
        }
        return last;
    }

    /** A QMP query for {@link #await}. */
    @FunctionalInterface
    interface Query {
        JsonNode get(VmProcess vm) throws IOException, InterruptedException;
    }

    /** CPU time (user + system) the process used so far, in clock ticks ({@code /proc/PID/stat}). */
    long cpuTicks() throws IOException {
        String stat = Files.readString(Path.of("/proc", String.valueOf(pid()), "stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime, stime (fields 14 and 15)
    }

    /**
     * Waits until the process is idle: less than {@code coreFraction} of a core over half a second,
     * as a destination waiting for an incoming migration is once its JVM finished starting up (class
     * loading, the JIT compiling the start-up code). Gives up after {@code timeout} and returns false.
     */
    boolean awaitIdle(double coreFraction, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        long ticks = cpuTicks();
        long at = System.nanoTime();
        while (System.nanoTime() < deadline) {
            Thread.sleep(500);
            long t = cpuTicks();
            long now = System.nanoTime();
            double cores = (t - ticks) / 100.0 / ((now - at) / 1e9);
            if (cores < coreFraction) {
                return true;
            }
            ticks = t;
            at = now;
        }
        return false;
    }

    /** Waits for the process to end and returns its exit code, failing if it does not within {@code timeout}. */
    int awaitExit(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError(name + " still runs " + timeout.toSeconds() + " s later:\n" + logText());
        }
        closeQmp();
        return process.exitValue();
    }

    /** Sends QMP quit and returns the exit code. */
    int quit() throws IOException, InterruptedException {
        exec("quit");
        return awaitExit(Duration.ofSeconds(30));
    }

    /** SIGSTOP / SIGCONT: freezes the whole JVM (its sockets keep completing handshakes and buffering in the kernel). */
    void signal(String sig) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("kill", "-" + sig, String.valueOf(pid())).redirectErrorStream(true).start();
        if (p.waitFor() != 0) {
            throw new IOException("kill -" + sig + " " + pid() + ": " + new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
        }
    }

    String logText() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    /**
     * Samples the process: threads ({@code /proc/PID/task}), open file descriptors
     * ({@code /proc/PID/fd}), heap used after a full GC ({@code jcmd PID GC.run; GC.heap_info}: the
     * old generation under the launcher's ParallelGC, every generation under another collector) and
     * RSS. The first jcmd attach starts the target's Attach Listener thread: take one sample to warm
     * up before comparing thread counts.
     */
    Resources resources() throws IOException, InterruptedException {
        Path cmds = Files.createTempFile("modemu-jcmd", ".txt");
        String info;
        try {
            Files.writeString(cmds, "GC.run\nGC.heap_info\n");
            Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
            Process p = new ProcessBuilder(jcmd.toString(), String.valueOf(pid()), "-f", cmds.toString()).redirectErrorStream(true).start();
            info = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (p.waitFor() != 0) {
                throw new IOException("jcmd " + pid() + " failed: " + info);
            }
        } finally {
            Files.deleteIfExists(cmds);
        }
        // the old generation right after the full GC holds the live set; the young one fills again at once
        // (the guest keeps running), so counting it would measure the allocation rate, not what is kept
        Matcher old = Pattern.compile("ParOldGen\\s+total \\d+K, used (\\d+)K").matcher(info);
        long heap = 0;
        if (old.find()) {
            heap = Long.parseLong(old.group(1)) << 10;
        } else {
            Matcher m = Pattern.compile("total \\d+K, used (\\d+)K").matcher(info);
            int gens = 0;
            while (m.find()) {
                heap += Long.parseLong(m.group(1)) << 10;
                gens++;
            }
            if (gens == 0) {
                throw new IOException("jcmd " + pid() + " GC.heap_info: no 'total NK, used NK' line in:\n" + info);
            }
        }
        long rss = -1;
        for (String line : Files.readAllLines(Path.of("/proc", String.valueOf(pid()), "status"))) {
            if (line.startsWith("VmRSS:")) {
                rss = Long.parseLong(line.replaceAll("\\D", "")) << 10;
            }
        }
        return new Resources(count(Path.of("/proc", String.valueOf(pid()), "task")), count(Path.of("/proc", String.valueOf(pid()), "fd")), heap, rss);
    }

    private static int count(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return (int) s.count();
        }
    }

    static String mib(long bytes) {
        return String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }

    private void closeQmp() {
        if (qmp != null) {
            try {
                qmp.close();
            } catch (IOException ignored) {
                // the process is gone anyway
            }
            qmp = null;
        }
    }

    /** Ends the process if it still runs: SIGTERM (its shutdown hook quits the VM), then SIGKILL after 10 s. */
    @Override
    public void close() {
        closeQmp();
        if (process.isAlive()) {
            process.destroy();
            try {
                if (!process.waitFor(10, TimeUnit.SECONDS)) {
                    process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public String toString() {
        return name + (netns == null ? "" : "@" + netns);
    }
}
