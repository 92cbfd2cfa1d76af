package io.modemu.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Two network namespaces joined by a veth pair ({@code ip netns}, {@code ip link}, {@code tc} from
 * iproute2), for tests that migrate across a real network hop: side A is 10.231.0.1/24, side B
 * 10.231.0.2/24. Names carry the test JVM's pid ({@code modemu-PID-N-a}, veth {@code mdmPID-Na}), so
 * that concurrent runs on one machine never touch each other's namespaces and {@link #cleanStale()}
 * can remove those of a run that died without tearing down.
 *
 * <p>Link shaping is a root qdisc on both veth ends (each end shapes what it sends): {@link #netem}
 * where the kernel has {@code sch_netem}, {@link #rate} (tbf) everywhere. Not thread-safe.
 */
final class NetnsPair implements AutoCloseable {
    private static final Pattern NETNS_NAME = Pattern.compile("modemu-(\\d+)-\\d+-[ab]");
    private static final Pattern LINK_NAME = Pattern.compile("mdm(\\d+)-\\d+[ab]");
    private static final AtomicInteger NEXT = new AtomicInteger();

    /** One end of the link: the namespace a process runs in, its veth device and its address. */
    record Side(String netns, String device, String address) {
        @Override
        public String toString() {
            return netns + "/" + address;
        }
    }

    /** Why network namespaces cannot be used here (not root, a container that refuses them, no iproute2). */
    static final class Unavailable extends Exception {
        private static final long serialVersionUID = 1L;

        Unavailable(String message) {
            super(message);
        }
    }

    /** The output and exit code of a command. */
    record Result(int exit, String output) {
        boolean ok() {
            return exit == 0;
        }
    }

    final Side a;
    final Side b;
    private String shaping = "none";
    private boolean closed;

    private NetnsPair(Side a, Side b) {
        this.a = a;
        this.b = b;
    }

    /** The other end of the link. */
    Side other(Side s) {
        return s.equals(a) ? b : a;
    }

    /**
     * Creates both namespaces and the veth pair between them, with addresses, links up, loopback up
     * in each and the link shaped to 1 Gbit/s (tbf); checks that a command can run inside them. On
     * any refusal everything created so far is removed.
     *
     * @throws Unavailable naming the command the system refused and its answer
     */
    static NetnsPair create() throws Unavailable {
        if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
            throw new Unavailable("network namespaces are Linux-only (this is " + System.getProperty("os.name") + ")");
        }
        long pid = ProcessHandle.current().pid();
        int n = NEXT.incrementAndGet();
        Side a = new Side("modemu-" + pid + "-" + n + "-a", "mdm" + pid + "-" + n + "a", "10.231.0.1");
        Side b = new Side("modemu-" + pid + "-" + n + "-b", "mdm" + pid + "-" + n + "b", "10.231.0.2");
        NetnsPair p = new NetnsPair(a, b);
        try {
            p.setup(List.of("ip", "netns", "add", a.netns()));
            p.setup(List.of("ip", "netns", "add", b.netns()));
            p.setup(List.of("ip", "link", "add", a.device(), "type", "veth", "peer", "name", b.device()));
            for (Side s : List.of(a, b)) {
                p.setup(List.of("ip", "link", "set", s.device(), "netns", s.netns()));
                p.setup(List.of("ip", "-n", s.netns(), "addr", "add", s.address() + "/24", "dev", s.device()));
                p.setup(List.of("ip", "-n", s.netns(), "link", "set", "lo", "up"));
                p.setup(List.of("ip", "-n", s.netns(), "link", "set", s.device(), "up"));
                p.setup(List.of("ip", "netns", "exec", s.netns(), "true"));
            }
            try {
                p.rate("1gbit");
            } catch (IllegalStateException e) {
                throw new Unavailable("the kernel refused the tbf qdisc that shapes the link: " + e.getMessage());
            }
        } catch (Unavailable e) {
            p.close();
            throw e;
        }
        // a test JVM that is told to stop (failsafe's timeout, Ctrl-C) still tears down; one killed outright leaves it to cleanStale()
        Runtime.getRuntime().addShutdownHook(new Thread(p::close, "netns-teardown"));
        return p;
    }

    private void setup(List<String> command) throws Unavailable {
        Result r;
        try {
            r = exec(command);
        } catch (IOException e) {
            throw new Unavailable("cannot run '" + String.join(" ", command) + "': " + e.getMessage() + " (is iproute2 installed?)");
        }
        if (!r.ok()) {
            throw new Unavailable("'" + String.join(" ", command) + "' was refused (exit " + r.exit() + "): " + r.output().strip()
                    + (isRoot() ? "" : " (network namespaces need root)"));
        }
    }

    private static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    /**
     * Shapes both directions with netem, for example {@code netem("delay", "1ms", "rate", "1gbit")}.
     *
     * @return null when applied, otherwise why the kernel refused it (no {@code sch_netem}): the link keeps its previous shaping
     */
    String netem(String... args) {
        for (Side s : List.of(a, b)) {
            List<String> cmd = new ArrayList<>(List.of("tc", "-n", s.netns(), "qdisc", "replace", "dev", s.device(), "root", "netem"));
            cmd.addAll(List.of(args));
            Result r = run(cmd);
            if (!r.ok()) {
                String why = r.output().contains("Specified qdisc kind is unknown")
                        ? "the kernel has no netem qdisc (sch_netem): " + r.output().strip()
                        : "the kernel refused the netem qdisc: " + r.output().strip();
                if (s == b) {
                    rate(shaping.startsWith("tbf ") ? shaping.substring(4) : "1gbit");
                }
                return why;
            }
        }
        shaping = "netem " + String.join(" ", args);
        return null;
    }

    /** Shapes both directions to {@code rate} (tc units, for example {@code 1gbit}) with a token bucket (tbf). */
    void rate(String rate) {
        long bitsPerSecond = bits(rate);
        // a bucket of 10 ms of traffic, at least 64 KiB: enough for the timer granularity at any HZ
        long burst = Math.max(64 << 10, bitsPerSecond / 8 / 100);
        for (Side s : List.of(a, b)) {
            check(run(List.of("tc", "-n", s.netns(), "qdisc", "replace", "dev", s.device(), "root", "tbf", "rate", rate, "burst",
                    String.valueOf(burst), "latency", "50ms")));
        }
        shaping = "tbf " + rate;
    }

    /** What shapes the link now, for the test's report. */
    String shaping() {
        return shaping;
    }

    private static long bits(String rate) {
        Matcher m = Pattern.compile("(\\d+)([kmg]?)bit").matcher(rate.toLowerCase(java.util.Locale.ROOT));
        if (!m.matches()) {
            throw new IllegalArgumentException("rate '" + rate + "': expected NUMBER[k|m|g]bit");
        }
        long v = Long.parseLong(m.group(1));
        return switch (m.group(2)) {
            case "k" -> v * 1_000;
            case "m" -> v * 1_000_000;
            case "g" -> v * 1_000_000_000;
            default -> v;
        };
    }

    /** Cuts the link: {@code ip link set DEV down} on {@code s}'s end (the peer loses its carrier; no RST, no FIN reaches anyone). */
    void down(Side s) {
        check(run(List.of("ip", "-n", s.netns(), "link", "set", s.device(), "down")));
    }

    /** Brings both ends up again (addresses and routes come back with the link). */
    void up() {
        for (Side s : List.of(a, b)) {
            check(run(List.of("ip", "-n", s.netns(), "link", "set", s.device(), "up")));
        }
    }

    /** Whether {@code s}'s namespace has an established TCP connection to {@code port} on the other side. */
    boolean established(Side s, int port) {
        Result r = run(List.of("ip", "netns", "exec", s.netns(), "ss", "-Htn", "state", "established", "dst", other(s).address() + ":" + port));
        return r.ok() && !r.output().isBlank();
    }

    /** Kills what still runs in the namespaces, then deletes them (the veth pair goes with them). Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Side s : List.of(a, b)) {
            remove(s.netns());
        }
        run(List.of("ip", "link", "delete", a.device()));
    }

    private static void remove(String netns) {
        Result pids = run(List.of("ip", "netns", "pids", netns));
        if (pids.ok()) {
            for (String p : pids.output().strip().split("\\s+")) {
                if (!p.isEmpty()) {
                    ProcessHandle.of(Long.parseLong(p)).ifPresent(ProcessHandle::destroyForcibly);
                }
            }
        }
        run(List.of("ip", "netns", "delete", netns));
    }

    /**
     * Removes the namespaces and veth devices left by an earlier run whose JVM died before tearing
     * down (its pid is gone). Those of live runs are left alone.
     *
     * @return what was removed, for the log
     */
    static List<String> cleanStale() {
        List<String> removed = new ArrayList<>();
        Result ns = run(List.of("ip", "netns", "list"));
        if (ns.ok()) {
            for (String line : ns.output().lines().toList()) {
                String name = line.strip().split("\\s+")[0];
                Matcher m = NETNS_NAME.matcher(name);
                if (m.matches() && ProcessHandle.of(Long.parseLong(m.group(1))).isEmpty()) {
                    remove(name);
                    removed.add("netns " + name);
                }
            }
        }
        Result links = run(List.of("ip", "-o", "link", "show"));
        if (links.ok()) {
            Matcher m = Pattern.compile("^\\d+: (mdm\\d+-\\d+[ab])[@:]", Pattern.MULTILINE).matcher(links.output());
            while (m.find()) {
                Matcher l = LINK_NAME.matcher(m.group(1));
                if (l.matches() && ProcessHandle.of(Long.parseLong(l.group(1))).isEmpty()) {
                    run(List.of("ip", "link", "delete", m.group(1)));
                    removed.add("link " + m.group(1));
                }
            }
        }
        return removed;
    }

    private static void check(Result r) {
        if (!r.ok()) {
            throw new IllegalStateException(r.output().strip());
        }
    }

    /** Runs a command, returning its exit code and output; a command that cannot start counts as exit 127. */
    static Result run(List<String> command) {
        try {
            Result r = exec(command);
            return r.ok() ? r : new Result(r.exit(), "'" + String.join(" ", command) + "' (exit " + r.exit() + "): " + r.output());
        } catch (IOException e) {
            return new Result(127, "'" + String.join(" ", command) + "': " + e.getMessage());
        }
    }

    private static Result exec(List<String> command) throws IOException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        try {
            p.getOutputStream().close();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return new Result(124, "timed out after 30 s");
            }
            return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }
}
