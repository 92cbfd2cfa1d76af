package io.modemu.migration.tcp;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.aio.AioContext;
import io.modemu.machine.GuestMemory;
import io.modemu.machine.Registration;
import io.modemu.machine.RunState;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationParameters;
import io.modemu.migration.MigrationStatus;
import io.modemu.migration.tcp.testbed.DiskWriter;
import io.modemu.migration.tcp.testbed.TestBlockDevice;
import io.modemu.migration.tcp.testbed.TestVm;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;

/**
 * The seed's scenario, again and again: a guest keeps {@value #DEPTH} slow requests (null-co with
 * latency) in flight on an IOThread dataplane while the VM hops from machine to machine, and the
 * completion of each migration — the stop into finish-migrate, with the dataplane draining and moving
 * its backend home — lands with requests in flight. It runs until {@value #MIGRATIONS} migrations
 * found at least {@value #MIN_IN_FLIGHT} requests in flight as their stop began on the main loop (and
 * the dataplane's stop handler still had some to drain); a guest starved of CPU by a busy host may
 * leave fewer in flight now and then, and such migrations are checked like the others but not counted
 * (at most a tenth of them may fall short). None may hang and none may lose or repeat a request:
 * every request the guest submitted completes exactly once, on whichever machine it was when it
 * completed.
 */
class SeedScenarioStressTest {
    static final int MIGRATIONS = Integer.getInteger("modemu.stress.migrations", 200);
    static final int DEPTH = 96;
    static final int RING = 128;
    static final int MIN_IN_FLIGHT = 32;
    static final long LATENCY_NS = 50_000_000;
    /**
     * A bit faster than latency over depth, so that the depth is what limits the guest: in steady
     * state a request completes about every millisecond and the guest refills the slot at once.
     */
    static final long PACE_US = LATENCY_NS / 1000 * 2 / 3 / DEPTH;

    @Test
    void everyCompletionLandsWithSlowRequestsInFlightAndNoneHangsOrLosesAWrite() throws Exception {
        TestVm.Spec spec = new TestVm.Spec();
        spec.name = "hop0";
        spec.ram = 4L << 20;
        spec.nullLatencyNs = LATENCY_NS;
        spec.guestOptions.put("ring", Integer.toString(RING));
        spec.guestOptions.put("depth", Integer.toString(DEPTH));
        spec.guestOptions.put("dirty-pages", "2");
        spec.guestOptions.put("wait", "200us");
        spec.guestOptions.put("pace", PACE_US + "us");
        MigrationParameters params = MigrationParameters.defaults().withMaxBandwidth(0).withIoTimeoutMs(5_000);
        long completionsOnEarlierMachines = 0;
        List<Integer> inFlight = new ArrayList<>();
        int qualifying = 0;
        int hop = 0;
        TestVm vm = TestVm.create(spec);
        try {
            vm.start();
            while (qualifying < MIGRATIONS) {
                hop++;
                assertThat(hop - qualifying - 1).as("migrations whose stop found fewer than %d requests in flight (a starved guest), of %d", MIN_IN_FLIGHT,
                        hop - 1).isLessThanOrEqualTo(MIGRATIONS / 10);
                TestVm next = TestVm.create(spec.destination("hop" + hop));
                try {
                    String uri = next.migration.incoming("tcp:127.0.0.1:0", IncomingOptions.defaults());
                    TestVm src = vm;
                    // steady state: a full round of paced requests completed on this machine, the pipeline is full again
                    TestVm.await(() -> src.device.completions() >= DEPTH + DEPTH / 2 && src.device.backend().inFlight() >= DEPTH - 16, Duration.ofSeconds(30),
                            () -> "the guest does not keep " + DEPTH + " requests in flight: " + src.guest() + ", " + src.device.backend().inFlight()
                                    + " in flight");
                    vm.migration.setParameters(params);
                    // STOP is emitted on the main loop as the stop begins, before the vCPUs pause
                    int[] atStop = {-1};
                    Registration stopWatch = src.machine.addEventListener(e -> {
                        if (e.name().equals("STOP")) {
                            atStop[0] = src.device.backend().inFlight();
                        }
                    });
                    vm.migration.migrate(uri);
                    MigrationInfo info = finishOrDump(vm, "hop " + hop);
                    assertThat(info.status()).as("hop %d: %s", hop, info).isEqualTo(MigrationStatus.COMPLETED);
                    assertThat(finishOrDump(next, "hop " + hop + " destination").status()).isEqualTo(MigrationStatus.COMPLETED);
                    assertThat(vm.machine.runState()).isEqualTo(RunState.POSTMIGRATE);
                    assertThat(next.machine.runState()).isEqualTo(RunState.RUNNING);
                    stopWatch.close();
                    inFlight.add(atStop[0]);
                    if (atStop[0] >= MIN_IN_FLIGHT && vm.device.inFlightAtLastStop() > 0) {
                        qualifying++;
                    }
                    assertNoLoopErrors(vm);
                } catch (Throwable t) {
                    next.close();
                    throw t;
                }
                completionsOnEarlierMachines += vm.device.completions();
                vm.close();
                vm = next;
            }
            vm.awaitGuestProgress(500, Duration.ofSeconds(30));
            vm.machine.vmStop(RunState.PAUSED).join();
            assertNoLoopErrors(vm);
            DiskWriter.State s = vm.guest();
            assertThat(s.failures()).as("wrong, repeated or failed completions seen by the guest (first at request %d)", s.firstFailure()).isZero();
            long completedNotSeen = completedButUnprocessed(vm.machine.memory(), s);
            long taken = vm.device.submissions();
            assertThat(completionsOnEarlierMachines + vm.device.completions())
                    .as("completions on every machine = requests the guest processed + completed ones it has not looked at yet")
                    .isEqualTo(s.completed() + completedNotSeen);
            assertThat(vm.device.completions()).as("the last machine completed everything it took").isEqualTo(taken);
            assertThat(s.completed()).isGreaterThan((long) MIGRATIONS * DEPTH);
        } finally {
            vm.close();
        }
        List<Integer> sorted = inFlight.stream().sorted().toList();
        System.out.printf("%d migrations, %d with at least %d requests in flight as the stop began; in flight: min %d, median %d, max %d%n", hop,
                qualifying, MIN_IN_FLIGHT, sorted.getFirst(), sorted.get(sorted.size() / 2), sorted.getLast());
        assertThat(qualifying).isEqualTo(MIGRATIONS);
    }

    private static long completedButUnprocessed(GuestMemory m, DiskWriter.State s) {
        long base = m.blocks().getFirst().base();
        long n = 0;
        for (long seq = s.doneSeq(); seq < s.nextSeq(); seq++) {
            long e = base + DiskWriter.RING + 8 + ((seq - 1) % RING) * TestBlockDevice.ENTRY;
            if (m.readU8(e + 1) != 0) {
                n++;
            }
        }
        return n;
    }

    private static void assertNoLoopErrors(TestVm vm) {
        List<AioContext> loops = new ArrayList<>(vm.machine.iothreads().values());
        loops.add(vm.machine.mainLoop());
        for (AioContext c : loops) {
            assertThat(c.uncaughtErrors()).as("uncaught errors on %s of %s: %s", c, vm.machine.name(), c.firstUncaughtError()).isZero();
        }
    }

    private static MigrationInfo finishOrDump(TestVm vm, String what) throws Exception {
        try {
            return vm.migration.completion().get(30, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            StringBuilder dump = new StringBuilder(what + " hangs; threads:\n");
            Thread.getAllStackTraces().forEach((t, st) -> {
                dump.append('"').append(t.getName()).append("\" ").append(t.getState()).append('\n');
                for (StackTraceElement f : st) {
                    dump.append("    at ").append(f).append('\n');
                }
            });
            throw new AssertionError(dump.toString(), e);
        }
    }
}
