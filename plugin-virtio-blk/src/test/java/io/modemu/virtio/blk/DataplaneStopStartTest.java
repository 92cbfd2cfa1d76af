package io.modemu.virtio.blk;

import static io.modemu.guest.virtio.VirtioBlkGuest.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.aio.AioContext;
import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.machine.RunState;
import io.modemu.machine.VmStateHandler;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The seed's scenario: the VM stops while the dataplane has many requests in flight on its IOThread,
 * the stop asked for by a thread other than the main loop (the migration thread, an IOThread, a vCPU).
 * The device must stop taking requests, drain, move its backend back to the main loop, and on start
 * move it back and serve what the guest queued meanwhile; nothing hangs, nothing escapes, no request
 * is lost or answered twice, and the data is right.
 */
class DataplaneStopStartTest {
    private static final int IN_FLIGHT = 100;
    private static final int MIN_IN_FLIGHT_AT_STOP = 64;

    /** Who asks for the stop. */
    enum Requester { TEST_THREAD, FOREIGN_THREAD, IOTHREAD, VCPU, MAIN_LOOP }

    /**
     * A handler that runs before the device's on stop (higher priority), records what it sees, and
     * lets the disk complete the requests it held: so they are provably in flight when the stop
     * reaches the device, and complete while the device drains.
     */
    private static final class Probe implements VmStateHandler {
        final VirtioBlkDevice device;
        final AioContext mainLoop;
        final TestDiskDriver disks;
        final AtomicInteger inFlightAtStop = new AtomicInteger(-1);
        final AtomicReference<String> wrongThread = new AtomicReference<>();

        Probe(VirtioBlkDevice device, AioContext mainLoop, TestDiskDriver disks) {
            this.device = device;
            this.mainLoop = mainLoop;
            this.disks = disks;
        }

        @Override
        public CompletionStage<Void> stop(RunState newState) {
            if (!mainLoop.inThread()) {
                wrongThread.set(Thread.currentThread().getName());
            }
            inFlightAtStop.set(device.inFlight());
            disks.release();
            return CompletableFuture.completedFuture(null);
        }

        @Override
        public CompletionStage<Void> start() {
            return CompletableFuture.completedFuture(null);
        }
    }

    /** Runs right after the device's stop handler (lower priority) and records what the device left behind. */
    private static final class TailProbe implements VmStateHandler {
        final VirtioBlkDevice device;
        final io.modemu.machine.GuestMemory memory;
        volatile long usedRingIdxAddr;
        final AtomicInteger inFlightAfter = new AtomicInteger(-1);
        final AtomicInteger usedIdxAfter = new AtomicInteger(-1);
        final AtomicReference<AioContext> backendAfter = new AtomicReference<>();

        TailProbe(VirtioBlkDevice device, io.modemu.machine.GuestMemory memory) {
            this.device = device;
            this.memory = memory;
        }

        @Override
        public CompletionStage<Void> stop(RunState newState) {
            inFlightAfter.set(device.inFlight() + device.backend().inFlight());
            backendAfter.set(device.backend().context());
            usedIdxAfter.set(memory.readU16Acquire(usedRingIdxAddr));
            return CompletableFuture.completedFuture(null);
        }

        @Override
        public CompletionStage<Void> start() {
            return CompletableFuture.completedFuture(null);
        }
    }

    private static CompletableFuture<Void> requestStop(Harness h, Requester who) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        Runnable ask = () -> h.machine.vmStop(RunState.PAUSED).whenComplete((v, t) -> {
            if (t != null) {
                done.completeExceptionally(t);
            } else {
                done.complete(null);
            }
        });
        switch (who) {
            case TEST_THREAD -> ask.run();
            case FOREIGN_THREAD -> {
                // the thread only posts the request and returns (as a migration thread would before it waits);
                // joining it keeps a simulated run deterministic
                Thread t = Thread.ofPlatform().name("migration-like").start(ask);
                try {
                    t.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new AssertionError(e);
                }
            }
            case IOTHREAD -> h.machine.iothread("io0").execute(ask);
            case VCPU -> h.machine.vcpus().getFirst().context().execute(ask);
            case MAIN_LOOP -> h.machine.mainLoop().execute(ask);
        }
        return done;
    }

    /**
     * One machine, {@code rounds} stop/start cycles. Each round writes {@link #IN_FLIGHT} distinct
     * blocks, stops once at least 64 are in flight, checks the drained state, queues reads while the
     * VM is stopped, starts, and checks every block.
     */
    static void stopStartRounds(Harness h, int rounds, Requester[] requesters, String driveLatency) {
        h.drive("d0", "size=4M,store=s," + driveLatency);
        VirtioBlkDevice dev = h.device("drive=d0,iothread=io0,queue-size=256");
        Probe probe = new Probe(dev, h.machine.mainLoop(), h.disks);
        TailProbe tail = new TailProbe(dev, h.machine.memory());
        h.await(h.machine.mainLoop().submit(() -> h.machine.addVmStateHandler("probe", VirtioBlkDevice.VM_STATE_PRIORITY + 1, probe)));
        h.await(h.machine.mainLoop().submit(() -> h.machine.addVmStateHandler("tail-probe", VirtioBlkDevice.VM_STATE_PRIORITY - 1, tail)));
        h.start();
        VirtioBlkGuest g = h.guest(VirtioBlkGuest.Setup.defaults().withQueueSize(256).withIndirect(true));
        tail.usedRingIdxAddr = g.queue(0).usedAddr() + 2;
        AioContext io0 = h.machine.iothread("io0");
        Completions c = new Completions();
        long tag = 0;
        for (int round = 0; round < rounds; round++) {
            String where = (h.scheduler != null ? "seed " + h.scheduler.seed() + " " : "") + "round " + round;
            long firstTag = tag;
            h.disks.hold();
            for (int i = 0; i < IN_FLIGHT; i++) {
                long block = (round * 7L + i) % 512;
                h.machine.memory().writeU64(Harness.buffer(i), block << 16 | round);
                h.machine.memory().writeU64(Harness.buffer(i) + 4088, ~(block << 16 | round));
                assertThat(g.submit(0, T_OUT, block * 8, Harness.buffer(i), 4096, false, tag++)).as(where).isNotNegative();
            }
            g.kick(0);
            // the disk holds completions, so every write is taken and stays in flight until the probe lets them go;
            // only then is "every write the device took is published when it stopped" the same as "every write"
            h.awaitTrue(() -> h.disks.heldCount() == IN_FLIGHT, where + ": all " + IN_FLIGHT + " requests in flight");

            Requester who = requesters[round % requesters.length];
            h.await(requestStop(h, who));

            assertThat(probe.wrongThread.get()).as(where + ": stop handlers run on the main loop").isNull();
            assertThat(probe.inFlightAtStop.get()).as(where + ": requests in flight when the stop reached the device (%s)", who)
                    .isGreaterThanOrEqualTo(MIN_IN_FLIGHT_AT_STOP);
            assertThat(tail.inFlightAfter.get()).as(where + ": nothing in flight once the device's stop handler completed").isZero();
            assertThat(tail.backendAfter.get()).as(where + ": backend on the main loop once the device stopped").isSameAs(h.machine.mainLoop());
            assertThat(tail.usedIdxAfter.get()).as(where + ": every write published in the used ring once the device stopped")
                    .isEqualTo((int) (tag & 0xffff));
            assertThat(h.machine.runState()).isEqualTo(RunState.PAUSED);
            assertThat(dev.inFlight()).as(where + ": drained").isZero();
            assertThat(dev.backend().inFlight()).isZero();
            assertThat(dev.backend().context()).as(where + ": backend on the main loop").isSameAs(h.machine.mainLoop());
            assertThat(dev.isDataplaneRunning()).isFalse();
            g.ackInterrupt();
            g.poll(0, c, Integer.MAX_VALUE);
            for (long t = firstTag; t < tag; t++) {
                assertThat(c.status(t)).as(where + ": write %d completed before the stop finished", t).isEqualTo(S_OK);
            }

            // the guest queues reads while the VM is stopped: nothing is served until it starts
            long readsFrom = tag;
            for (int i = 0; i < IN_FLIGHT; i++) {
                long block = (round * 7L + i) % 512;
                g.submit(0, T_IN, block * 8, Harness.buffer(100 + i), 4096, true, tag++);
            }
            g.kick(0);
            h.idle();
            assertThat(g.queue(0).hasUsed()).as(where + ": nothing served while stopped").isFalse();
            assertThat(dev.backend().context()).isSameAs(h.machine.mainLoop());

            h.await(h.machine.vmStart());
            assertThat(dev.transport().isBroken()).as(where + ": device healthy").isFalse();
            assertThat(dev.backend().context()).as(where + ": backend back on its IOThread").isSameAs(io0);
            c.awaitCount(h, g, 0, (int) tag);
            for (int i = 0; i < IN_FLIGHT; i++) {
                long block = (round * 7L + i) % 512;
                // a later write in the same round may have overwritten the block: the last one wins
                int last = i;
                for (int k = i + 1; k < IN_FLIGHT; k++) {
                    if ((round * 7L + k) % 512 == block) {
                        last = k;
                    }
                }
                assertThat(c.status(readsFrom + i)).isEqualTo(S_OK);
                assertThat(h.machine.memory().readU64(Harness.buffer(100 + i))).as(where + ": block %d", block).isEqualTo(block << 16 | round);
                assertThat(last).isEqualTo(i);
            }
        }
        long errors = h.uncaughtErrors();
        assertThat(errors).as("errors escaped; first: %s", h.firstUncaught()).isZero();
    }

    @Test
    void stopWithRequestsInFlightAskedFromOtherThreadsWithRealThreads() {
        for (Requester who : new Requester[] {Requester.FOREIGN_THREAD, Requester.IOTHREAD, Requester.VCPU, Requester.TEST_THREAD}) {
            try (Harness h = Harness.threads(1)) {
                stopStartRounds(h, 6, new Requester[] {who}, "latency-ns=5ms");
            }
        }
    }

    @Test
    void stopWithRequestsInFlightUnderOneThousandSeeds() {
        Requester[] all = Requester.values();
        List<Long> failed = new ArrayList<>();
        AssertionError first = null;
        for (long seed = 1; seed <= 1000; seed++) {
            Requester[] order = {all[(int) (seed % all.length)], all[(int) ((seed / all.length) % all.length)]};
            try (Harness h = Harness.simulated(seed, 1)) {
                stopStartRounds(h, 2, order, "latency-ns=300us");
            } catch (AssertionError | RuntimeException e) {
                failed.add(seed);
                if (first == null) {
                    first = new AssertionError("seed " + seed + " failed (replay with Harness.simulated(" + seed + ", 1)): " + e.getMessage(), e);
                }
            }
        }
        if (first != null) {
            throw new AssertionError(failed.size() + " of 1000 seeds failed: " + failed, first);
        }
    }
}
