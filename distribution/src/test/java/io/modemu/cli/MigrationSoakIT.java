package io.modemu.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.ToLongFunction;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The soak, on demand ({@code -Dsoak.minutes=N}; skipped otherwise): live migrations back and forth
 * between real {@code bin/modemu run} processes for N minutes, with disk I/O in flight and the
 * disk-verify guest checking its data after every hop, failing if any block fails to verify or if
 * heap (after a full GC), threads or open file descriptors keep growing.
 *
 * <p>Modemu, like QEMU, takes one incoming migration per process and a source that handed its VM
 * over can only quit, so no process lives through many successful hops. Two lanes make the leak
 * check meaningful:
 * <ul>
 *   <li><b>the hopping guest</b>: each cycle a fresh destination takes the guest (over loopback, or
 *       between two network namespaces with {@code -Dsoak.netns=true}); each holder is sampled at the
 *       same point of its life, just before it migrates on, so state that grows with the number of
 *       hops (in guest RAM, device sections, the disk) shows up as a trend across holders;</li>
 *   <li><b>the anchor</b>: one long-lived VM (its own disk) that each cycle starts outgoing
 *       migrations that never complete and carries on: cancelled while active, destination killed
 *       while active, configuration refused by the destination, connection refused. Everything an
 *       outgoing migration allocates (threads, sockets, selectors, buffers) must be given back each
 *       time, so its samples must stay flat.</li>
 * </ul>
 */
class MigrationSoakIT {
    static final int BLOCKS = 256;
    static final String GUEST = "disk-verify,blocks=" + BLOCKS + ",dirty-rate=8M,dirty-size=8M";
    static final long IO_TIMEOUT_MS = 3000;

    @TempDir
    Path tmp;

    private final List<VmProcess> processes = new ArrayList<>();
    private NetnsPair net;
    private int nextVm;
    private int nextPort = 4400;

    @AfterEach
    void endEverything() {
        processes.forEach(VmProcess::close);
        if (net != null) {
            net.close();
        }
    }

    /** Where a VM runs: a namespace (or null) and the address its destination listens on. */
    private record Side(String netns, String address) {
    }

    private VmProcess vm(String role, Side side, Path disk, String memory, boolean incoming) throws IOException {
        List<String> args = new ArrayList<>(List.of("-m", memory, "-object", "iothread,id=io0", "-drive", "file=" + disk + ",format=raw,if=none,id=d0",
                "-device", "virtio-blk-device,drive=d0,iothread=io0,id=vd0", "-guest", GUEST));
        if (incoming) {
            args.addAll(List.of("-incoming", "defer"));
        }
        VmProcess p = VmProcess.start(role + (++nextVm), side.netns(), tmp, args);
        processes.add(p);
        return p;
    }

    private String listen(VmProcess dst, Side side) throws Exception {
        int port = side.netns() != null ? nextPort++ : freePort();
        String uri = "tcp:" + side.address() + ":" + port;
        dst.exec("migrate-set-parameters", Map.of("x-io-timeout", IO_TIMEOUT_MS));
        dst.exec("migrate-incoming", Map.of("uri", uri));
        return uri;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static Path disk(Path p) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(4 << 20);
        }
        return p;
    }

    private static boolean isFinal(JsonNode m) {
        String s = m.path("status").asText();
        return s.equals("completed") || s.equals("failed") || s.equals("cancelled");
    }

    /** Waits until the guest verified {@code BLOCKS} more blocks than {@code since}, and checks that none failed. */
    private static JsonNode verifiesOn(VmProcess vm, long since, String when) throws Exception {
        JsonNode g = vm.await("a generation verified " + when, Duration.ofSeconds(120), VmProcess::guest,
                x -> x.path("verified").asLong() >= since + BLOCKS || x.path("failed").asLong() > 0);
        assertThat(g.path("failed").asLong()).as("%s: blocks that failed verification %s: %s", vm, when, g).isZero();
        assertThat(g.path("io-errors").asLong()).as("%s: I/O errors %s: %s", vm, when, g).isZero();
        return g;
    }

    @Test
    void migrationsBackAndForthForMinutesLoseNoDataAndLeakNothing() throws Exception {
        int minutes = Integer.getInteger("soak.minutes", 0);
        assumeTrue(minutes > 0, "the soak runs on demand: ./mvnw -pl distribution verify -Dit.test=MigrationSoakIT -Dsoak.minutes=N [-Dsoak.netns=true]");
        Side[] sides = {new Side(null, "127.0.0.1"), new Side(null, "127.0.0.1")};
        if (Boolean.getBoolean("soak.netns")) {
            NetnsPair.cleanStale();
            net = NetnsPair.create();
            net.rate("1gbit");
            sides = new Side[] {new Side(net.a.netns(), net.a.address()), new Side(net.b.netns(), net.b.address())};
        }
        Side loopback = new Side(null, "127.0.0.1");
        Path hopDisk = disk(tmp.resolve("hop.img"));
        Path anchorDisk = disk(tmp.resolve("anchor.img"));
        long deadline = System.nanoTime() + Duration.ofMinutes(minutes).toNanos();

        VmProcess holder = vm("hop", sides[0], hopDisk, "64M", false);
        VmProcess anchor = vm("anchor", loopback, anchorDisk, "64M", false);
        verifiesOn(holder, 0, "at the start");
        verifiesOn(anchor, 0, "at the start");
        anchor.resources(); // the first attach starts the Attach Listener thread: not a leak
        List<VmProcess.Resources> anchorSamples = new ArrayList<>();
        List<VmProcess.Resources> holderSamples = new ArrayList<>();
        List<Long> hopMs = new ArrayList<>();
        List<Long> downtimeMs = new ArrayList<>();
        int hops = 0;
        int attempts = 0;
        long started = System.nanoTime();

        while (System.nanoTime() < deadline || hops < 8) {
            int cycle = hops;
            Side to = sides[(cycle + 1) % 2];
            // both JVMs start at once
            VmProcess dst = vm("hop", to, hopDisk, "64M", true);
            AnchorMode mode = AnchorMode.values()[cycle % AnchorMode.values().length];
            VmProcess anchorDst = mode.needsDestination() ? vm("anchordst", loopback, anchorDisk, mode == AnchorMode.CONFIGURATION_REFUSED ? "96M" : "64M", true) : null;

            // --- the hop: sampled just before it migrates on, the holder hands the guest over
            holderSamples.add(holder.resources());
            long before = holder.guest().path("verified").asLong();
            holder.exec("migrate-set-parameters", Map.of("x-io-timeout", IO_TIMEOUT_MS, "downtime-limit", 300, "max-bandwidth", 128L << 20));
            String uri = listen(dst, to);
            holder.exec("migrate", Map.of("uri", uri));
            JsonNode info = holder.await("hop " + (cycle + 1), Duration.ofSeconds(120), VmProcess::migration, MigrationSoakIT::isFinal);
            assertThat(info.path("status").asText()).as("hop %d, %s -> %s: %s", cycle + 1, holder, dst, info).isEqualTo("completed");
            hopMs.add(info.path("total-time").asLong());
            downtimeMs.add(info.path("downtime").asLong());
            dst.await("running", Duration.ofSeconds(30), vm -> vm.exec("query-status"), s -> s.path("status").asText().equals("running"));
            long carried = dst.guest().path("verified").asLong();
            assertThat(carried).as("hop %d: the guest's count carried over (%d before the hop)", cycle + 1, before).isGreaterThanOrEqualTo(before);
            verifiesOn(dst, carried, "after hop " + (cycle + 1));
            assertThat(holder.quit()).as("hop %d: the old holder's exit code", cycle + 1).isZero();
            processes.remove(holder);
            holder = dst;
            hops++;

            // --- the anchor: outgoing migrations that never complete, and the VM carries on
            long anchorBefore = anchor.guest().path("verified").asLong();
            attempts += anchorAttempt(anchor, anchorDst, mode, loopback);
            attempts += anchorAttempt(anchor, null, AnchorMode.CONNECTION_REFUSED, loopback);
            assertThat(anchor.status()).isEqualTo("running");
            verifiesOn(anchor, anchorBefore, "after cycle " + (cycle + 1) + " (" + mode + ")");
            anchorSamples.add(anchor.resources());
            if (hops % 5 == 0) {
                System.out.printf(Locale.ROOT, "soak: %d hops, %d failed migrations on the anchor, %.0f s; anchor %s%n", hops, attempts,
                        (System.nanoTime() - started) / 1e9, anchorSamples.getLast());
            }
        }

        JsonNode hopGuest = holder.guest();
        JsonNode anchorGuest = anchor.guest();
        assertThat(holder.quit()).isZero();
        assertThat(anchor.quit()).isZero();
        processes.clear();

        List<GrowthCheck.Verdict> verdicts = new ArrayList<>();
        for (var lane : List.of(Map.entry("anchor", anchorSamples), Map.entry("hop holders", holderSamples))) {
            List<VmProcess.Resources> s = lane.getValue();
            // after a full GC the old generation varies by tens of KiB between samples: 1 MiB (or 10 %) is well above that noise
            long heapTolerance = Math.max(1L << 20, GrowthCheck.median(series(s, VmProcess.Resources::heapAfterGcBytes)) / 10);
            System.out.printf("soak: %s heap after GC, KiB per sample: %s%n", lane.getKey(),
                    series(s, VmProcess.Resources::heapAfterGcBytes).stream().map(b -> String.valueOf(b >> 10)).toList());
            verdicts.add(new GrowthCheck(lane.getKey() + " threads", series(s, VmProcess.Resources::threads), 3).verdict());
            verdicts.add(new GrowthCheck(lane.getKey() + " fds", series(s, VmProcess.Resources::fds), 4).verdict());
            verdicts.add(new GrowthCheck(lane.getKey() + " heap after GC", series(s, VmProcess.Resources::heapAfterGcBytes), heapTolerance, true).verdict());
        }
        System.out.printf(Locale.ROOT, "soak: %d minutes%s: %d hops (median %d ms, max downtime %d ms), %d failed or cancelled migrations on the anchor%n",
                minutes, net != null ? " between two network namespaces" : " over loopback", hops, GrowthCheck.median(hopMs),
                downtimeMs.stream().mapToLong(Long::longValue).max().orElse(0), attempts);
        System.out.printf(Locale.ROOT, "soak: data: hopping guest %d blocks verified, %d failed (generation %d); anchor %d verified, %d failed%n",
                hopGuest.path("verified").asLong(), hopGuest.path("failed").asLong(), hopGuest.path("generation").asLong(),
                anchorGuest.path("verified").asLong(), anchorGuest.path("failed").asLong());
        System.out.printf("soak: anchor first: %s%nsoak: anchor last:  %s%n", anchorSamples.getFirst(), anchorSamples.getLast());
        System.out.printf("soak: holder first: %s%nsoak: holder last:  %s%n", holderSamples.getFirst(), holderSamples.getLast());
        verdicts.forEach(v -> System.out.println("soak: " + v));
        assertThat(hopGuest.path("failed").asLong()).isZero();
        assertThat(anchorGuest.path("failed").asLong()).isZero();
        for (GrowthCheck.Verdict v : verdicts) {
            assertThat(v.enoughSamples()).as(v.toString()).isTrue();
            assertThat(v.growing()).as(v.toString()).isFalse();
        }
    }

    private static <T> List<Long> series(List<T> samples, ToLongFunction<T> f) {
        return samples.stream().map(x -> f.applyAsLong(x)).toList();
    }

    /** How an anchor's migration ends without completing. */
    enum AnchorMode {
        CANCELLED_WHILE_ACTIVE, DESTINATION_KILLED_WHILE_ACTIVE, CONFIGURATION_REFUSED, CONNECTION_REFUSED;

        boolean needsDestination() {
            return this != CONNECTION_REFUSED;
        }
    }

    /** One migration of the anchor that must not complete; checks how it ended. Returns 1. */
    private int anchorAttempt(VmProcess anchor, VmProcess dst, AnchorMode mode, Side side) throws Exception {
        // slow enough to be caught while active
        anchor.exec("migrate-set-parameters", Map.of("x-io-timeout", IO_TIMEOUT_MS, "max-bandwidth", 2L << 20));
        String uri = dst == null ? "tcp:127.0.0.1:" + freePort() : listen(dst, side);
        anchor.exec("migrate", Map.of("uri", uri));
        if (mode == AnchorMode.CANCELLED_WHILE_ACTIVE || mode == AnchorMode.DESTINATION_KILLED_WHILE_ACTIVE) {
            JsonNode m = anchor.await("active with RAM sent", Duration.ofSeconds(60), VmProcess::migration,
                    x -> isFinal(x) || x.path("status").asText().equals("active") && x.path("ram").path("transferred").asLong() >= 256 << 10);
            assertThat(m.path("status").asText()).as("%s: %s", mode, m).isEqualTo("active");
            if (mode == AnchorMode.CANCELLED_WHILE_ACTIVE) {
                anchor.exec("migrate_cancel");
            } else {
                dst.signal("KILL");
            }
        }
        JsonNode end = anchor.await(mode + " ends", Duration.ofSeconds(60), VmProcess::migration, MigrationSoakIT::isFinal);
        String expected = mode == AnchorMode.CANCELLED_WHILE_ACTIVE ? "cancelled" : "failed";
        assertThat(end.path("status").asText()).as("%s: %s", mode, end).isEqualTo(expected);
        if (mode == AnchorMode.CONFIGURATION_REFUSED) {
            assertThat(end.path("error-desc").asText()).contains("configuration mismatch");
        }
        if (dst != null) {
            assertThat(dst.awaitExit(Duration.ofSeconds(60))).as("%s: the anchor's destination exit code", mode).isNotZero();
            processes.remove(dst);
        }
        return 1;
    }
}
