package io.modemu.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * Live migration across a real network hop: the source runs in one network namespace, the
 * destination in another, joined by a veth pair shaped with {@code tc} (netem where the kernel has
 * it, tbf otherwise), both {@code bin/modemu run} processes of the installation with virtio-blk on
 * an IOThread, the disk-verify guest program and one disk image (shared storage).
 *
 * <p>One guest lives through the whole class and hops from side to side (a fresh destination for
 * every hop, as QEMU needs a fresh process per incoming migration); a test that finds it gone
 * starts a new one. Where the system refuses network namespaces (not root, a container) every test
 * is skipped with the reason; where the kernel has no netem, only what needs it (latency, loss) is.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class NetworkHopMigrationIT {
    /** x-io-timeout on both ends: how long a silent peer is tolerated before the migration fails. */
    static final long IO_TIMEOUT_MS = 3000;
    static final long DOWNTIME_LIMIT_MS = 300;
    /** A modest dirty rate: 8 MiB/s over an 8 MiB working set, with disk I/O at queue depth 16. */
    static final String GUEST = "disk-verify,blocks=256,dirty-rate=8M,dirty-size=8M";
    static final int BLOCKS = 256;

    @TempDir
    static Path tmp;

    private NetnsPair net;
    private String unavailable;
    private Path disk;
    private VmProcess guest;
    private NetnsPair.Side guestSide;
    private int nextPort = 4400;
    private int nextVm;
    private final List<VmProcess> spawned = new ArrayList<>();

    @BeforeAll
    void createTheLink() throws Exception {
        List<String> stale = NetnsPair.cleanStale();
        if (!stale.isEmpty()) {
            System.out.println("network-hop: removed what a crashed run left: " + stale);
        }
        try {
            net = NetnsPair.create();
        } catch (NetnsPair.Unavailable e) {
            unavailable = e.getMessage();
            System.out.println("network-hop: skipped: " + unavailable);
            return;
        }
        disk = tmp.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(disk.toFile(), "rw")) {
            f.setLength(4 << 20);
        }
        guestSide = net.a;
        guest = start(guestSide, false); // its JVM starts while the first test starts its destination
    }

    @BeforeEach
    void requireTheLink() {
        assumeTrue(net != null, () -> "network namespaces are not available here, so no migration across a network hop: " + unavailable);
        net.up();
        net.rate("1gbit");
    }

    @AfterEach
    void endThisTestsDestinations() {
        for (VmProcess vm : spawned) {
            if (vm != guest) {
                vm.close();
            }
        }
        spawned.clear();
        if (net != null) {
            net.up();
        }
    }

    @AfterAll
    void tearDown() {
        if (guest != null) {
            guest.close();
        }
        if (net != null) {
            net.close();
        }
    }

    private VmProcess start(NetnsPair.Side side, boolean incoming) throws IOException {
        List<String> args = new ArrayList<>(List.of("-m", "64M", "-object", "iothread,id=io0", "-drive", "file=" + disk + ",format=raw,if=none,id=d0",
                "-device", "virtio-blk-device,drive=d0,iothread=io0,id=vd0", "-guest", GUEST));
        if (incoming) {
            args.addAll(List.of("-incoming", "defer"));
        }
        VmProcess vm = VmProcess.start((incoming ? "dst" : "vm") + (++nextVm), side.netns(), tmp, args);
        spawned.add(vm);
        return vm;
    }

    /** A fresh destination on {@code side}, listening with the test's io timeout. */
    private Destination destination(NetnsPair.Side side) throws IOException {
        return new Destination(start(side, true), side, nextPort++);
    }

    record Destination(VmProcess vm, NetnsPair.Side side, int port) {
        String uri() {
            return "tcp:" + side.address() + ":" + port;
        }

        Destination listen() throws IOException, InterruptedException {
            vm.exec("migrate-set-parameters", Map.of("x-io-timeout", IO_TIMEOUT_MS));
            vm.exec("migrate-incoming", Map.of("uri", uri()));
            assertThat(vm.status()).isEqualTo("inmigrate");
            return this;
        }
    }

    /** The guest, running and verifying its disk; started anew (on side A) if an earlier test lost it. */
    private VmProcess guest() throws IOException, InterruptedException {
        if (guest == null || !guest.alive() || !guest.status().equals("running")) {
            // an earlier test failed half-way: whatever ran the guest goes, a new one starts
            if (guest != null) {
                guest.close();
            }
            guestSide = net.a;
            guest = start(guestSide, false);
        }
        // a guest that has run a little: a few generations verified
        guest.await("disk-verify verifying", Duration.ofSeconds(60), VmProcess::guest, g -> g.path("verified").asLong() >= 4 * BLOCKS);
        return guest;
    }

    private NetnsPair.Side otherSide() {
        return net.other(guestSide);
    }

    private static Map<String, Object> params(long downtimeLimitMs, long maxBandwidth) {
        return Map.of("x-io-timeout", IO_TIMEOUT_MS, "downtime-limit", downtimeLimitMs, "max-bandwidth", maxBandwidth, "x-timeout", 120_000);
    }

    private static final long DEFAULT_BANDWIDTH = 128L << 20;

    private static boolean isFinal(JsonNode m) {
        String s = m.path("status").asText();
        return s.equals("completed") || s.equals("failed") || s.equals("cancelled");
    }

    /** One hop of the guest to {@code dst}, which must complete: returns query-migrate's final answer. */
    private JsonNode hop(Destination dst, String label) throws Exception {
        VmProcess src = guest();
        dst.listen();
        if (!dst.vm().awaitIdle(0.2, Duration.ofSeconds(15))) {
            System.out.println("network-hop: " + dst.vm() + " still busy starting up after 15 s (an overloaded machine): migrating anyway");
        }
        long before = src.guest().path("verified").asLong();
        src.exec("migrate", Map.of("uri", dst.uri()));
        JsonNode info = src.await("the migration's end", Duration.ofSeconds(120), VmProcess::migration, NetworkHopMigrationIT::isFinal);
        assertThat(info.path("status").asText()).as("%s over %s: %s", label, net.shaping(), info).isEqualTo("completed");
        assertThat(src.status()).as("the source after the hand-over").isEqualTo("postmigrate");
        dst.vm().await("running", Duration.ofSeconds(30), vm -> vm.exec("query-status"), s -> s.path("status").asText().equals("running"));
        // the destination carries on where the source stopped and verifies at least one more full generation
        JsonNode g = dst.vm().await("a generation verified after the hop", Duration.ofSeconds(60), VmProcess::guest,
                x -> x.path("verified").asLong() >= before + BLOCKS || x.path("failed").asLong() > 0);
        assertThat(g.path("failed").asLong()).as("blocks that failed verification at the destination: %s", g).isZero();
        assertThat(g.path("io-errors").asLong()).as("I/O errors at the destination: %s", g).isZero();
        assertThat(src.quit()).as("the source's exit code").isZero();
        // where the downtime went, as the source logged it (stop, last pages and device state, destination loading, hand-over)
        src.logText().lines().filter(l -> l.contains(" completed in ")).forEach(l -> System.out.println("network-hop   " + l.replaceFirst("^.* - ", "")));
        guest = dst.vm();
        guestSide = dst.side();
        System.out.printf(Locale.ROOT, "network-hop %s (%s, %s -> %s): total-time %d ms, downtime %d ms (limit %d), setup %d ms, transferred %s, %d passes, %.0f Mbit/s%n",
                label, net.shaping(), src, dst.vm(), info.path("total-time").asLong(), info.path("downtime").asLong(), DOWNTIME_LIMIT_MS,
                info.path("setup-time").asLong(), VmProcess.mib(info.path("ram").path("transferred").asLong()),
                info.path("ram").path("dirty-sync-count").asLong(), info.path("ram").path("mbps").asDouble());
        return info;
    }

    /**
     * The downtime query-migrate reports is within the limit. It includes stopping the source (vCPUs,
     * dataplane drain, flush) and starting the destination, which a CPU-starved machine stretches by
     * hundreds of milliseconds: where the load average exceeds twice the cores (a shared build machine)
     * a miss is reported as not judged (skipped, with the figures), never as a pass.
     */
    private void assertConvergedWithinTheLimit(JsonNode info) throws IOException {
        long downtime = info.path("downtime").asLong(-1);
        assertThat(downtime).as("downtime reported by query-migrate: %s", info).isNotNegative();
        if (downtime > DOWNTIME_LIMIT_MS) {
            double load = Double.parseDouble(Files.readString(Path.of("/proc/loadavg")).split(" ")[0]);
            int cores = Runtime.getRuntime().availableProcessors();
            assumeTrue(load <= 2 * cores, () -> String.format(Locale.ROOT,
                    "downtime %d ms over the %d ms limit not judged: the machine is overloaded (load average %.1f on %d cores)", downtime,
                    DOWNTIME_LIMIT_MS, load, cores));
        }
        assertThat(downtime).as("downtime reported by query-migrate: %s", info).isLessThanOrEqualTo(DOWNTIME_LIMIT_MS);
    }

    @Test
    @Order(1)
    void aGuestDirtyingMemoryAtAModestRateConvergesWithinTheDowntimeLimitAtOneGigabitPerSecond() throws Exception {
        Destination dst = destination(otherSide());
        guest().exec("migrate-set-parameters", params(DOWNTIME_LIMIT_MS, DEFAULT_BANDWIDTH));
        assertConvergedWithinTheLimit(hop(dst, "1 Gbit/s"));
    }

    @Test
    @Order(2)
    void withOneMillisecondOfLatencyToo() throws Exception {
        String refused = net.netem("delay", "1ms", "rate", "1gbit");
        assumeTrue(refused == null, () -> "latency needs netem: " + refused);
        Destination dst = destination(otherSide());
        guest().exec("migrate-set-parameters", params(DOWNTIME_LIMIT_MS, DEFAULT_BANDWIDTH));
        assertConvergedWithinTheLimit(hop(dst, "1 Gbit/s, 1 ms latency"));
    }

    /**
     * After a cut: the source fails within the io timeout (plus what its socket buffer absorbs) with
     * an error naming the timeout, runs again and keeps verifying its disk; the destination exits
     * non-zero saying why; then, link up, a fresh destination takes the guest and verifies its disk,
     * which proves that no acknowledged write was lost.
     */
    private void assertTheSourceCarriesOnAndTheGuestMovesLater(VmProcess src, Destination doomed, long cutAtNanos, String phase) throws Exception {
        // its JVM starts while the source waits out the timeout
        Destination fresh = destination(doomed.side());
        JsonNode info = src.await("the migration's failure", Duration.ofSeconds(60), VmProcess::migration, NetworkHopMigrationIT::isFinal);
        long failedAfterMs = (System.nanoTime() - cutAtNanos) / 1_000_000;
        assertThat(info.path("status").asText()).as("cut during %s: %s", phase, info).isEqualTo("failed");
        assertThat(info.path("error-desc").asText()).as("the source's error names the timeout").contains(IO_TIMEOUT_MS + " ms");
        assertThat(failedAfterMs).as("the source failed %d ms after the cut (io timeout %d ms)", failedAfterMs, IO_TIMEOUT_MS)
                .isLessThan(IO_TIMEOUT_MS + 10_000);
        assertThat(src.status()).as("the source after the failed migration").isEqualTo("running");
        int exit = doomed.vm().awaitExit(Duration.ofSeconds(IO_TIMEOUT_MS / 1000 + 30));
        String dstLog = doomed.vm().logText();
        assertThat(exit).as("the destination's exit code; its log:\n%s", dstLog).isNotZero();
        assertThat(dstLog).contains("modemu: incoming migration failed:");
        JsonNode g0 = src.guest();
        JsonNode g = src.await("the source verifying again", Duration.ofSeconds(60), VmProcess::guest,
                x -> x.path("verified").asLong() >= g0.path("verified").asLong() + BLOCKS || x.path("failed").asLong() > 0);
        assertThat(g.path("failed").asLong()).as("blocks that failed verification at the source: %s", g).isZero();
        String dstError = dstLog.lines().filter(l -> l.contains("modemu: incoming migration failed:")).findFirst().orElse("");
        System.out.printf(Locale.ROOT, "network-hop cut during %s: source failed %d ms after the cut: %s; destination exit %d: %s%n", phase,
                failedAfterMs, info.path("error-desc").asText(), exit, dstError);

        net.up();
        net.rate("1gbit");
        src.exec("migrate-set-parameters", params(DOWNTIME_LIMIT_MS, DEFAULT_BANDWIDTH));
        hop(fresh, "after the cut during " + phase);
    }

    @Test
    @Order(3)
    void aLinkCutDuringSetupFailsTheMigrationByTimeoutAndTheSourceCarriesOn() throws Exception {
        Destination doomed = destination(otherSide());
        VmProcess src = guest();
        src.exec("migrate-set-parameters", params(DOWNTIME_LIMIT_MS, DEFAULT_BANDWIDTH));
        doomed.listen();
        // frozen, the destination's kernel still completes the handshake and buffers the configuration,
        // so the cut lands after the connection and before the destination accepts: in setup, before any RAM
        doomed.vm().signal("STOP");
        try {
            src.exec("migrate", Map.of("uri", doomed.uri()));
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (!net.established(guestSide, doomed.port()) && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(net.established(guestSide, doomed.port())).as("the source connected").isTrue();
            net.down(guestSide);
        } finally {
            doomed.vm().signal("CONT");
        }
        long cutAt = System.nanoTime();
        JsonNode atCut = src.migration();
        assertThat(atCut.path("status").asText()).as("status at the cut").isEqualTo("setup");
        assertTheSourceCarriesOnAndTheGuestMovesLater(src, doomed, cutAt, "setup");
    }

    @Test
    @Order(4)
    void aLinkCutDuringIterationFailsTheMigrationByTimeoutAndTheSourceCarriesOn() throws Exception {
        Destination doomed = destination(otherSide());
        VmProcess src = guest();
        // 2 MiB/s, below the guest's dirty rate: the passes go on until the cut
        src.exec("migrate-set-parameters", params(DOWNTIME_LIMIT_MS, 2L << 20));
        doomed.listen();
        src.exec("migrate", Map.of("uri", doomed.uri()));
        JsonNode atCut = src.await("some RAM sent while active", Duration.ofSeconds(60), VmProcess::migration,
                m -> isFinal(m) || m.path("status").asText().equals("active") && m.path("ram").path("transferred").asLong() >= 1 << 20);
        net.down(guestSide);
        long cutAt = System.nanoTime();
        assertThat(atCut.path("status").asText()).as("status at the cut: %s", atCut).isEqualTo("active");
        System.out.printf(Locale.ROOT, "network-hop cut during iteration: %s of RAM sent, %d dirty-bitmap syncs so far%n",
                VmProcess.mib(atCut.path("ram").path("transferred").asLong()), atCut.path("ram").path("dirty-sync-count").asLong());
        assertTheSourceCarriesOnAndTheGuestMovesLater(src, doomed, cutAt, "iteration");
    }

    @Test
    @Order(5)
    void aLinkCutDuringCompletionFailsTheMigrationByTimeoutAndTheSourceResumes() throws Exception {
        Destination doomed = destination(otherSide());
        VmProcess src = guest();
        // a 32 Mbit/s link and a downtime limit that any remainder meets: the switch-over comes after the
        // first pass and sending the last dirty pages with the VM stopped takes about two seconds
        net.rate("32mbit");
        src.exec("migrate-set-parameters", params(60_000, DEFAULT_BANDWIDTH));
        doomed.listen();
        src.exec("migrate", Map.of("uri", doomed.uri()));
        JsonNode atCut = src.await("the completion phase (status device)", Duration.ofSeconds(60), VmProcess::migration,
                m -> isFinal(m) || m.path("status").asText().equals("device"));
        net.down(guestSide);
        long cutAt = System.nanoTime();
        String runState = src.status();
        assertThat(atCut.path("status").asText()).as("status at the cut: %s", atCut).isEqualTo("device");
        assertThat(runState).as("the source's run state just after the cut").isEqualTo("finish-migrate");
        System.out.printf(Locale.ROOT, "network-hop cut during completion: status device, run state %s, %s still dirty, %s sent%n", runState,
                VmProcess.mib(atCut.path("ram").path("remaining").asLong()), VmProcess.mib(atCut.path("ram").path("transferred").asLong()));
        assertTheSourceCarriesOnAndTheGuestMovesLater(src, doomed, cutAt, "completion");
    }

    @Test
    @Order(6)
    void onePercentPacketLossIsSlowerButStillCorrect() throws Exception {
        String refused = net.netem("delay", "1ms", "rate", "1gbit");
        assumeTrue(refused == null, () -> "packet loss needs netem: " + refused);
        Destination clean = destination(otherSide());
        Destination lossy = destination(guestSide);
        // auto-converge in case the lossy link carries less than the guest dirties; the same for both hops
        guest().exec("migrate-set-capabilities", Map.of("capabilities", List.of(Map.of("capability", "auto-converge", "state", true))));
        guest().exec("migrate-set-parameters", params(DOWNTIME_LIMIT_MS, DEFAULT_BANDWIDTH));
        JsonNode without = hop(clean, "without loss");
        String lossRefused = net.netem("delay", "1ms", "loss", "1%", "rate", "1gbit");
        assertThat(lossRefused).as("netem took a delay but not a loss").isNull();
        guest().exec("migrate-set-capabilities", Map.of("capabilities", List.of(Map.of("capability", "auto-converge", "state", true))));
        guest().exec("migrate-set-parameters", params(DOWNTIME_LIMIT_MS, DEFAULT_BANDWIDTH));
        JsonNode with = hop(lossy, "with 1% loss");
        long t0 = without.path("total-time").asLong();
        long t1 = with.path("total-time").asLong();
        System.out.printf(Locale.ROOT, "network-hop 1%% loss: %d ms, without loss %d ms%n", t1, t0);
        assertThat(t1).as("1%% loss (%d ms) against none (%d ms)", t1, t0).isGreaterThan(t0);
    }
}
