package io.modemu.virtio.blk;

import static io.modemu.guest.virtio.VirtioBlkGuest.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.machine.RunState;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** num-queues > 1, queues spread over IOThreads; the backend lives in the first one. */
class MultiQueueTest {
    private static void everyQueueServesAndSurvivesStopStart(Harness h) {
        h.drive("d0", "size=4M,latency-ns=20us");
        VirtioBlkDevice dev = h.device("drive=d0,num-queues=4,iothread-vq-mapping.0.iothread=io0,iothread-vq-mapping.1.iothread=io1");
        assertThat(dev.queueContexts()).containsExactly(h.machine.iothread("io0"), h.machine.iothread("io1"), h.machine.iothread("io0"),
                h.machine.iothread("io1"));
        h.start();
        assertThat(dev.backend().context()).isSameAs(h.machine.iothread("io0"));
        VirtioBlkGuest g = h.guest(VirtioBlkGuest.Setup.defaults().withQueues(4).withQueueSize(64));
        assertThat(g.has(F_MQ)).isTrue();
        Completions[] c = {new Completions(), new Completions(), new Completions(), new Completions()};
        for (int round = 0; round < 3; round++) {
            for (int q = 0; q < 4; q++) {
                for (int i = 0; i < 20; i++) {
                    int b = q * 20 + i;
                    byte[] data = new byte[512];
                    new Random(round * 1000L + b).nextBytes(data);
                    h.machine.memory().write(Harness.buffer(b), data);
                    g.submit(q, T_OUT, b, Harness.buffer(b), 512, false, round * 1000L + b);
                }
                g.kick(q);
            }
            h.await(h.machine.vmStop(RunState.PAUSED));
            assertThat(dev.inFlight()).isZero();
            assertThat(dev.backend().context()).isSameAs(h.machine.mainLoop());
            h.await(h.machine.vmStart());
            for (int q = 0; q < 4; q++) {
                c[q].awaitCount(h, g, q, 20 * (round + 1));
            }
        }
        for (int q = 0; q < 4; q++) {
            for (int i = 0; i < 20; i++) {
                int b = q * 20 + i;
                g.submit(q, T_IN, b, Harness.buffer(100 + b), 512, true, 5000 + b);
            }
            g.kick(q);
        }
        for (int q = 0; q < 4; q++) {
            c[q].awaitCount(h, g, q, 80);
            for (int i = 0; i < 20; i++) {
                int b = q * 20 + i;
                byte[] expected = new byte[512];
                new Random(2000L + b).nextBytes(expected);
                assertThat(c[q].status(5000 + b)).isEqualTo(S_OK);
                assertThat(h.machine.memory().read(Harness.buffer(100 + b), 512)).as("block %d via queue %d", b, q).isEqualTo(expected);
            }
        }
        assertThat(h.uncaughtErrors()).isZero();
    }

    @Test
    void queuesSpreadOverTwoIoThreadsSimulated() {
        for (long seed = 1; seed <= 50; seed++) {
            try (Harness h = Harness.simulated(seed, 2)) {
                everyQueueServesAndSurvivesStopStart(h);
            } catch (AssertionError e) {
                throw new AssertionError("seed " + seed + ": " + e.getMessage(), e);
            }
        }
    }

    @Test
    void queuesSpreadOverTwoIoThreadsWithThreads() {
        try (Harness h = Harness.threads(2)) {
            everyQueueServesAndSurvivesStopStart(h);
        }
    }

    @Test
    void withoutMqTheDriverGetsOneQueue() {
        try (Harness h = Harness.simulated(3, 1)) {
            h.drive("d0", "size=1M");
            h.device("drive=d0,num-queues=2,iothread=io0");
            h.start();
            VirtioBlkGuest g = h.guest(VirtioBlkGuest.Setup.defaults().withFeatures(DEFAULT_FEATURES & ~(1L << F_MQ)));
            assertThat(g.numQueues()).isEqualTo(1);
            Completions c = new Completions();
            g.submit(0, T_FLUSH, 0, 0, 0, false, 1);
            g.kick(0);
            c.awaitCount(h, g, 0, 1);
        }
    }
}
