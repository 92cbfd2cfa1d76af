package io.modemu.virtio.blk;

import static io.modemu.guest.virtio.VirtioBlkGuest.S_OK;
import static io.modemu.guest.virtio.VirtioBlkGuest.T_IN;
import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.guest.virtio.GuestVirtQueue;
import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.guest.virtio.VirtioMmioRegisters;
import io.modemu.machine.Machine;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A pass takes the available chains in batches before it submits their requests, and publishes the
 * answers in batches: what the driver sees must be what it would see one request at a time.
 */
class BatchedRequestsTest {
    private Harness h;

    @AfterEach
    void nothingEscaped() {
        if (h != null) {
            long errors = h.uncaughtErrors();
            String first = h.firstUncaught();
            h.close();
            assertThat(errors).as("host errors escaped into a loop; first: %s", first).isZero();
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4, 5})
    void requestsTakenBeforeAMalformedChainInTheSameBatchAreStillAnswered(long seed) {
        h = Harness.simulated(seed, 1);
        h.drive("d0", "size=1M");
        h.device("drive=d0,iothread=io0");
        h.start();
        VirtioBlkGuest g = h.guest(VirtioBlkGuest.Setup.defaults().withQueueSize(16));
        GuestVirtQueue vq = g.queue(0);
        // two good reads and, behind them in the same kick, a chain whose data buffer lies outside RAM
        g.submit(0, T_IN, 0, Harness.buffer(0), 512, true, 1);
        g.submit(0, T_IN, 8, Harness.buffer(1), 4096, true, 2);
        int bad = vq.alloc(3);
        long header = Harness.buffer(30);
        h.machine.memory().writeU64(header, T_IN);
        h.machine.memory().writeU64(header + 8, 0);
        vq.setDesc(bad, header, 16, GuestVirtQueue.DESC_F_NEXT);
        vq.setDesc(vq.next(bad), Machine.RAM_BASE + Harness.RAM + 0x1000, 512, GuestVirtQueue.DESC_F_WRITE | GuestVirtQueue.DESC_F_NEXT);
        vq.setDesc(vq.next(vq.next(bad)), Harness.buffer(31), 1, GuestVirtQueue.DESC_F_WRITE);
        vq.add(bad);
        g.kick(0);

        h.awaitTrue(() -> (g.status() & VirtioMmioRegisters.STATUS_NEEDS_RESET) != 0, "DEVICE_NEEDS_RESET");
        h.awaitTrue(() -> h.device.inFlight() == 0, "nothing in flight");
        Completions c = new Completions();
        g.poll(0, c, 16);
        assertThat(c.count()).as("seed %d: the two good requests, and not the malformed one, are answered", seed).isEqualTo(2);
        assertThat(c.status(1)).isEqualTo(S_OK);
        assertThat(c.status(2)).isEqualTo(S_OK);
    }

    @ParameterizedTest
    @ValueSource(longs = {11, 12, 13})
    void moreRequestsThanOneBatchAreEachAnsweredOnceWithTheirStatusByte(long seed) {
        h = Harness.simulated(seed, 1);
        h.drive("d0", "size=1M,latency-ns=20us");
        h.device("drive=d0,iothread=io0");
        h.start();
        VirtioBlkGuest g = h.guest(VirtioBlkGuest.Setup.defaults().withQueueSize(128));
        Completions c = new Completions();
        int n = 40;
        for (int i = 0; i < n; i++) {
            assertThat(g.submit(0, T_IN, 8L * i, Harness.buffer(i), 4096, true, i)).isNotNegative();
        }
        g.kick(0);
        c.awaitCount(h, g, 0, n);
        for (int i = 0; i < n; i++) {
            // a status still at S_PENDING would mean a used element was published without its status byte
            assertThat(c.status(i)).as("seed %d, request %d", seed, i).isEqualTo(S_OK);
        }
        assertThat(h.device.inFlight()).isZero();
    }
}
