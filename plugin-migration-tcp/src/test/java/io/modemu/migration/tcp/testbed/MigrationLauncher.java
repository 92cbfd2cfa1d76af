package io.modemu.migration.tcp.testbed;

import io.modemu.machine.RamBlock;
import io.modemu.machine.RunState;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.LiveMigration;
import io.modemu.migration.MigrationCapability;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationParameters;
import io.modemu.migration.MigrationStatus;
import io.modemu.platform.PlatformVersion;
import io.modemu.plugin.ContributionKind;
import io.modemu.plugin.Contributions;
import io.modemu.plugin.PluginHost;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * A small stand-in for {@code modemu run}: boots one test bed machine ({@link TestVm}) from
 * {@code key=value} arguments and runs it as a migration source or destination, printing what it
 * finds as {@code @key=value} lines on stdout (log lines go elsewhere in the stream and never start
 * with {@code @}). The process tests and the benchmark start two of these ({@link ChildJvm}).
 *
 * <p>Everything the machine uses (the transport, the file driver, virtio-blk, disk-verify) comes from
 * the plugin jars in {@code plugins=DIR} through the plugin host; the platform must be on the module path.
 *
 * <pre>
 * common       plugins=DIR ram=SIZE ram-file=PATH device=on|off disk=PATH guest-options=k:v;k:v digest=on|off settle=on|off
 * destination  role=destination incoming=URI autostart=on|off run-after=MS raw-sink=on
 * source       role=source to=URI|stdin random=SIZE warmup=N max-bandwidth=B downtime-limit=MS multifd=N raw-port=P raw-bytes=SIZE
 * </pre>
 *
 * With {@code to=stdin} a source boots and warms up while its destination boots, prints
 * {@code @ready=...}, and reads the URI to migrate to from its standard input.
 *
 * With a device, {@code disk} is required and the disk-verify guest runs on it. Exit codes: 0 when
 * the migration completed and every check passed; 2 for a source whose migration failed but that runs
 * on intact; 1 for anything else (a destination whose incoming migration failed among them).
 */
public final class MigrationLauncher {
    private final Map<String, String> args;

    private MigrationLauncher(Map<String, String> args) {
        this.args = args;
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new LinkedHashMap<>();
        for (String s : argv) {
            int eq = s.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("expected key=value, not '" + s + "'");
            }
            a.put(s.substring(0, eq), s.substring(eq + 1));
        }
        int code;
        try {
            code = new MigrationLauncher(a).run();
        } catch (Throwable t) {
            out("exception", String.valueOf(t));
            t.printStackTrace();
            code = 1;
        }
        System.out.flush();
        System.exit(code);
    }

    private static void out(String key, Object value) {
        System.out.println("@" + key + "=" + value);
        System.out.flush();
    }

    private String arg(String k, String def) {
        return args.getOrDefault(k, def);
    }

    private String required(String k) {
        String v = args.get(k);
        if (v == null) {
            throw new IllegalArgumentException("missing argument '" + k + "='");
        }
        return v;
    }

    private static long size(String s) {
        return io.modemu.options.Sizes.parse(s, 1, "size");
    }

    private int run() throws Exception {
        TestVm.Spec spec = new TestVm.Spec();
        spec.ram = size(arg("ram", "32M"));
        spec.ramFile = args.containsKey("ram-file") ? Path.of(args.get("ram-file")) : null;
        spec.device = arg("device", "on").equals("on");
        spec.guest = spec.device;
        spec.disk = args.containsKey("disk") ? Path.of(args.get("disk")) : null;
        spec.incoming = arg("role", "source").equals("destination");
        spec.name = arg("role", "source");
        for (String kv : arg("guest-options", "").split(";")) {
            if (!kv.isEmpty()) {
                spec.guestOptions.put(kv.substring(0, kv.indexOf(':')), kv.substring(kv.indexOf(':') + 1));
            }
        }
        PluginHost host = PluginHost.load(Path.of(required("plugins")), PlatformVersion.get());
        if (!host.problems().isEmpty()) {
            throw new IllegalStateException("plugins failed to load: " + host.problems());
        }
        Contributions.Builder b = Contributions.builder();
        for (ContributionKind k : ContributionKind.values()) {
            host.contributions().entries(k).values().forEach(e -> b.add(e.kind(), e.name(), e.implementation(), e.pluginId()));
        }
        spec.contributions = b.build();
        try (TestVm vm = TestVm.create(spec)) {
            return spec.incoming ? destination(vm, arg("incoming", "tcp:127.0.0.1:0")) : source(vm, required("to"));
        }
    }

    /**
     * With {@code settle=on} (the benchmark), waits until the process's migration warm-up ended, so that
     * neither the raw references nor the migration run next to it; prints how long that took.
     */
    private void settle() throws Exception {
        if (arg("settle", "off").equals("on")) {
            long t0 = System.nanoTime();
            LiveMigration.warmUp().get(2, TimeUnit.MINUTES);
            out("warm-up-wait-ms", (System.nanoTime() - t0) / 1_000_000);
        }
    }

    /** Says which plugin contributes the transport of {@code uri}. */
    private static void reportTransport(TestVm vm, String uri) {
        String scheme = uri.substring(0, Math.max(0, uri.indexOf(':')));
        Contributions.Entry transport = vm.spec().contributions.entries(ContributionKind.MIGRATION_SCHEME).get(scheme);
        out("transport-plugin", transport == null ? "none" : transport.pluginId());
    }

    private int destination(TestVm vm, String incoming) throws Exception {
        if (arg("raw-sink", "off").equals("on")) {
            out("raw-port", rawSink());
        }
        settle();
        boolean autostart = arg("autostart", "off").equals("on");
        reportTransport(vm, incoming);
        String uri = vm.migration.incoming(incoming, new IncomingOptions(autostart, false));
        long cpuBefore = processCpuNanos();
        out("listening", uri);
        MigrationInfo info = vm.migration.completion().get(30, TimeUnit.MINUTES);
        out("cpu-ms", (processCpuNanos() - cpuBefore) / 1_000_000);
        out("status", info.status());
        if (info.status() != MigrationStatus.COMPLETED) {
            out("error", info.errorDesc());
            out("run-state", vm.machine.runState());
            return 1;
        }
        if (arg("digest", "on").equals("on")) {
            out("ram-sha256", digest(vm));
        }
        if (vm.spec().guest) {
            out("guest-verified", vm.guest().verified());
        }
        boolean ok = true;
        if (vm.spec().disk != null) {
            String bad = vm.checkDisk();
            out("disk-check", bad == null ? "ok" : bad);
            ok = bad == null;
        }
        if (!autostart) {
            vm.start();
        }
        out("run-state", vm.machine.runState());
        if (vm.spec().guest) {
            TestVm.GuestStatus before = vm.guest();
            Thread.sleep(Long.parseLong(arg("run-after", "500")));
            TestVm.GuestStatus after = vm.awaitGuestProgress(100, Duration.ofSeconds(60));
            vm.pause();
            out("guest-completed-after", after.completed() - before.completed());
            out("guest-verified-after", after.verified() - before.verified());
            out("guest-failures", vm.guest().failed());
            out("guest-io-errors", vm.guest().ioErrors());
            ok &= vm.guest().failed() == 0 && vm.guest().ioErrors() == 0;
            if (vm.spec().disk != null) {
                String bad = vm.checkDisk();
                out("disk-check-after", bad == null ? "ok" : bad);
                ok &= bad == null;
            }
        }
        return ok ? 0 : 1;
    }

    private int source(TestVm vm, String destination) throws Exception {
        String to = destination;
        if (args.containsKey("random")) {
            fillRandom(vm, size(args.get("random")));
        }
        vm.start();
        if (vm.spec().guest) {
            vm.awaitGuestProgress(Long.parseLong(arg("warmup", "300")), Duration.ofSeconds(60));
        }
        settle();
        if (args.containsKey("raw-port")) {
            int rawPort = Integer.parseInt(args.get("raw-port"));
            out("raw-mbit", rawThroughputMbit(rawPort, size(arg("raw-bytes", "2G")), 0));
            // the same amount of memory as the guest's random data, read here and written there, once
            long span = size(arg("random", "0"));
            if (span > 0) {
                out("raw-ram-mbit", rawThroughputMbit(rawPort, span, span));
            }
        }
        MigrationParameters p = MigrationParameters.defaults().withMaxBandwidth(size(arg("max-bandwidth", "0")))
                .withDowntimeLimitMs(Long.parseLong(arg("downtime-limit", "300")));
        int multifd = Integer.parseInt(arg("multifd", "0"));
        if (multifd > 0) {
            p = p.withMultifdChannels(multifd);
            vm.migration.setCapability(MigrationCapability.MULTIFD, true);
        }
        vm.migration.setParameters(p);
        if (to.equals("stdin")) {
            out("ready", "reading the destination's URI from stdin");
            to = new java.io.BufferedReader(new java.io.InputStreamReader(System.in, java.nio.charset.StandardCharsets.UTF_8)).readLine();
            if (to == null) {
                throw new IllegalStateException("to=stdin: no URI on stdin");
            }
        }
        reportTransport(vm, to);
        long started = System.nanoTime();
        long cpuBefore = processCpuNanos();
        vm.migration.migrate(to);
        out("migrating", to);
        MigrationInfo info = vm.migration.completion().get(30, TimeUnit.MINUTES);
        long wallMs = (System.nanoTime() - started) / 1_000_000;
        out("cpu-ms", (processCpuNanos() - cpuBefore) / 1_000_000);
        out("status", info.status());
        if (info.status() == MigrationStatus.COMPLETED) {
            out("total-ms", info.totalTimeMs());
            out("downtime-ms", info.downtimeMs());
            out("setup-ms", info.setupTimeMs());
            out("wall-ms", wallMs);
            out("transferred-bytes", info.ram().transferred());
            out("normal-pages", info.ram().normal());
            out("zero-pages", info.ram().duplicate());
            out("dirty-sync-count", info.ram().dirtySyncCount());
            out("throughput-mbit", String.format("%.0f", info.ram().transferred() * 8.0 / info.totalTimeMs() / 1000));
            out("run-state", vm.machine.runState());
            if (arg("digest", "on").equals("on")) {
                out("ram-sha256", digest(vm));
            }
            if (vm.spec().guest) {
                out("guest-verified", vm.guest().verified());
                out("guest-failures", vm.guest().failed());
            }
            return 0;
        }
        out("error", info.errorDesc());
        out("run-state", vm.machine.runState());
        boolean intact = vm.machine.runState() == RunState.RUNNING;
        if (vm.spec().guest) {
            TestVm.GuestStatus s = vm.awaitGuestProgress(200, Duration.ofSeconds(60));
            out("guest-verified", s.verified());
            out("guest-failures", s.failed());
            intact &= s.failed() == 0 && s.ioErrors() == 0;
            vm.pause();
            if (vm.spec().disk != null) {
                String bad = vm.checkDisk();
                out("disk-check", bad == null ? "ok" : bad);
                intact &= bad == null;
            }
        }
        out("source-intact", intact);
        return intact ? 2 : 1;
    }

    /** CPU time of this process so far (every thread), from /proc; 0 where there is none. */
    private static long processCpuNanos() {
        try {
            String[] f = java.nio.file.Files.readString(Path.of("/proc/self/stat")).split("\\) ", 2)[1].split(" ");
            long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]);
            return ticks * 10_000_000L;
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    /** Fills the last {@code bytes} of RAM with random bytes (as QEMU's baseline loads its random file high). */
    private static void fillRandom(TestVm vm, long bytes) {
        RamBlock b = vm.machine.memory().blocks().getFirst();
        MemorySegment ram = b.segment();
        long from = Math.max(vm.spec().guest ? TestVm.RANDOM_FROM : 0, ram.byteSize() - bytes);
        SplittableRandom r = new SplittableRandom(1234);
        for (long off = from; off + 8 <= ram.byteSize(); off += 8) {
            ram.set(ValueLayout.JAVA_LONG_UNALIGNED, off, r.nextLong());
        }
        b.dirty().mark(from, ram.byteSize() - from);
    }

    private static String digest(TestVm vm) throws NoSuchAlgorithmException {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        for (RamBlock b : vm.machine.memory().blocks()) {
            md.update(b.segment().asByteBuffer());
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** A plain TCP sink: reads until the sender is done, then answers one byte. Returns its port. */
    static int rawSink() throws IOException {
        ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        Thread.ofPlatform().name("raw-sink").daemon(true).start(() -> {
            ByteBuffer small = ByteBuffer.allocateDirect(1 << 20);
            java.lang.foreign.MemorySegment big = null;
            while (true) {
                try (SocketChannel s = server.accept()) {
                    ByteBuffer head = ByteBuffer.allocate(16);
                    while (head.hasRemaining()) {
                        if (s.read(head) < 0) {
                            throw new IOException("raw sink: the sender closed early");
                        }
                    }
                    long left = head.flip().getLong();
                    long span = head.getLong();
                    // span 0: into one hot 1 MiB buffer; otherwise walking through memory of that size, as a destination's RAM
                    if (span > 0 && (big == null || big.byteSize() != span)) {
                        big = java.lang.foreign.Arena.global().allocate(span, 4096);
                    }
                    long at = 0;
                    while (left > 0) {
                        ByteBuffer buf;
                        if (span == 0) {
                            buf = small.clear();
                        } else {
                            if (at == span) {
                                at = 0;
                            }
                            buf = big.asSlice(at, Math.min(1 << 20, span - at)).asByteBuffer();
                        }
                        int n = s.read(buf);
                        if (n < 0) {
                            break;
                        }
                        left -= n;
                        at += n;
                    }
                    s.write(ByteBuffer.wrap(new byte[] {1}));
                } catch (IOException e) {
                    return;
                }
            }
        });
        return ((InetSocketAddress) server.getLocalAddress()).getPort();
    }

    /**
     * Raw loopback TCP, the best of three runs, in Mbit/s: {@code bytes} from a direct buffer to the sink.
     * With {@code span} 0 both ends reuse one 1 MiB buffer, which stays in the processor's caches (the
     * limit of the TCP stack alone); otherwise each end walks through memory of {@code span} bytes, as a
     * migration reads guest RAM and writes it on the other side (the limit for moving that much memory).
     */
    private static long rawThroughputMbit(int port, long bytes, long span) throws IOException {
        ByteBuffer small = ByteBuffer.allocateDirect(1 << 20);
        java.lang.foreign.MemorySegment big = null;
        if (span > 0) {
            big = java.lang.foreign.Arena.ofAuto().allocate(span, 4096);
            byte[] chunk = new byte[1 << 20];
            new java.util.SplittableRandom(7).nextBytes(chunk);
            for (long off = 0; off < span; off += chunk.length) {
                java.lang.foreign.MemorySegment.copy(java.lang.foreign.MemorySegment.ofArray(chunk), 0, big, off, Math.min(chunk.length, span - off));
            }
        }
        long best = 0;
        for (int run = 0; run < 3; run++) {
            try (SocketChannel s = SocketChannel.open(new InetSocketAddress(InetAddress.getLoopbackAddress(), port))) {
                s.setOption(StandardSocketOptions.TCP_NODELAY, true);
                long t0 = System.nanoTime();
                ByteBuffer head = ByteBuffer.allocate(16).putLong(bytes).putLong(span).flip();
                while (head.hasRemaining()) {
                    s.write(head);
                }
                long at = 0;
                for (long left = bytes; left > 0; ) {
                    ByteBuffer buf;
                    if (big == null) {
                        buf = small.clear().limit((int) Math.min(small.capacity(), left));
                    } else {
                        if (at == span) {
                            at = 0;
                        }
                        buf = big.asSlice(at, Math.min(Math.min(1 << 20, span - at), left)).asByteBuffer();
                    }
                    int n = s.write(buf);
                    left -= n;
                    at += n;
                }
                s.read(ByteBuffer.allocate(1));
                long ns = System.nanoTime() - t0;
                best = Math.max(best, (long) (bytes * 8.0 / ns * 1000));
            }
        }
        return best;
    }
}
