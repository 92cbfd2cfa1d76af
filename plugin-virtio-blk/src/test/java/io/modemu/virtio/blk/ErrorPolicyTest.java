package io.modemu.virtio.blk;

import static io.modemu.guest.virtio.VirtioBlkGuest.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.block.Errno;
import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.machine.MachineEvent;
import io.modemu.machine.RunState;
import io.modemu.virtio.blk.TestDiskDriver.Op;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** werror / rerror = report | ignore | stop | enospc, with QEMU's meanings and BLOCK_IO_ERROR events. */
class ErrorPolicyTest {
    private Harness h;
    private VirtioBlkGuest g;

    private void up(Harness harness, String policies) {
        h = harness;
        h.drive("d0", "size=1M,store=s");
        h.device("drive=d0,iothread=io0" + (policies.isEmpty() ? "" : "," + policies));
        h.start();
        g = h.guest(VirtioBlkGuest.Setup.defaults());
    }

    @AfterEach
    void nothingEscaped() {
        if (h != null) {
            long errors = h.uncaughtErrors();
            h.close();
            assertThat(errors).isZero();
        }
    }

    private List<MachineEvent> ioErrors() {
        return h.events.stream().filter(e -> e.name().equals("BLOCK_IO_ERROR")).toList();
    }

    private MachineEvent awaitIoErrorEvent() {
        h.awaitTrue(() -> !ioErrors().isEmpty(), "a BLOCK_IO_ERROR event");
        return ioErrors().getFirst();
    }

    @Test
    void reportCompletesAFailedReadWithIoErrAndKeepsRunning() {
        up(Harness.simulated(1, 1), "rerror=report");
        h.disks.failNext(Op.READ, Errno.EIO, 1);
        Completions c = new Completions();
        g.submit(0, T_IN, 0, Harness.buffer(0), 512, true, 1);
        g.submit(0, T_IN, 1, Harness.buffer(1), 512, true, 2);
        g.kick(0);
        c.awaitCount(h, g, 0, 2);
        assertThat(c.status(1)).isEqualTo(S_IOERR);
        assertThat(c.status(2)).isEqualTo(S_OK);
        MachineEvent e = awaitIoErrorEvent();
        assertThat(e.data()).containsEntry("device", "d0").containsEntry("operation", "read").containsEntry("action", "report")
                .containsEntry("nospace", false).containsEntry("reason", "EIO");
        assertThat(h.machine.runState()).isEqualTo(RunState.RUNNING);
    }

    @Test
    void ignoreCompletesAFailedWriteAsIfItSucceeded() {
        up(Harness.simulated(2, 1), "werror=ignore");
        h.disks.failNext(Op.WRITE, Errno.EIO, 1);
        Completions c = new Completions();
        g.submit(0, T_OUT, 0, Harness.buffer(0), 512, false, 1);
        g.kick(0);
        c.awaitCount(h, g, 0, 1);
        assertThat(c.status(1)).isEqualTo(S_OK);
        assertThat(awaitIoErrorEvent().data()).containsEntry("operation", "write").containsEntry("action", "ignore");
        assertThat(h.machine.runState()).isEqualTo(RunState.RUNNING);
    }

    private void stopParksTheRequestAndRetriesItOnResume(Harness harness) {
        up(harness, "werror=stop");
        byte[] data = new byte[4096];
        new Random(9).nextBytes(data);
        h.machine.memory().write(Harness.buffer(0), data);
        h.disks.failNext(Op.WRITE, Errno.EIO, -1);
        Completions c = new Completions();
        g.submit(0, T_OUT, 8, Harness.buffer(0), 4096, false, 1);
        g.submit(0, T_IN, 100, Harness.buffer(1), 512, true, 2);
        g.kick(0);
        h.awaitTrue(() -> h.machine.runState() == RunState.IO_ERROR, "the VM stops into io-error");
        assertThat(awaitIoErrorEvent().data()).containsEntry("operation", "write").containsEntry("action", "stop");
        // the stop sequence drains the device and moves the backend back to the main loop
        h.awaitTrue(() -> h.device.backend().context() == h.machine.mainLoop(), "the backend moved back to the main loop");
        assertThat(h.device.inFlight()).isZero();
        assertThat(h.device.isDataplaneRunning()).isFalse();
        assertThat(h.device.parkedRequests()).isEqualTo(1);
        g.poll(0, c, 10);
        assertThat(c.byTag).as("the read completed, the write did not").containsOnlyKeys(2L);
        // the administrator fixes the disk and resumes (QMP cont)
        h.disks.clearFaults();
        h.await(h.machine.vmStart());
        c.awaitCount(h, g, 0, 2);
        assertThat(c.status(1)).isEqualTo(S_OK);
        assertThat(h.device.parkedRequests()).isZero();
        assertThat(h.disks.store("s").asSlice(8 * 512, 4096).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)).isEqualTo(data);
        assertThat(h.device.backend().context()).isSameAs(h.machine.iothread("io0"));
    }

    @Test
    void stopParksTheRequestAndRetriesItOnResumeSimulated() {
        stopParksTheRequestAndRetriesItOnResume(Harness.simulated(3, 1));
    }

    @Test
    void stopParksTheRequestAndRetriesItOnResumeWithThreads() {
        stopParksTheRequestAndRetriesItOnResume(Harness.threads(1));
    }

    @Test
    void aRequestThatFailsAgainOnRetryStopsTheVmAgain() {
        up(Harness.simulated(4, 1), "rerror=stop");
        h.disks.failNext(Op.READ, Errno.EIO, 2);
        Completions c = new Completions();
        g.submit(0, T_IN, 0, Harness.buffer(0), 512, true, 1);
        g.kick(0);
        h.awaitTrue(() -> h.machine.runState() == RunState.IO_ERROR && h.device.parkedRequests() == 1, "first stop");
        h.await(h.machine.vmStart());
        h.awaitTrue(() -> h.machine.runState() == RunState.IO_ERROR && h.device.parkedRequests() == 1 && ioErrors().size() == 2, "second stop");
        h.await(h.machine.vmStart());
        c.awaitCount(h, g, 0, 1);
        assertThat(c.status(1)).isEqualTo(S_OK);
    }

    @Test
    void enospcStopsOnNoSpaceAndReportsOtherErrors() {
        up(Harness.simulated(5, 1), "");  // werror defaults to enospc, as in QEMU
        h.disks.failNext(Op.WRITE, Errno.EIO, 1);
        Completions c = new Completions();
        g.submit(0, T_OUT, 0, Harness.buffer(0), 512, false, 1);
        g.kick(0);
        c.awaitCount(h, g, 0, 1);
        assertThat(c.status(1)).isEqualTo(S_IOERR);
        assertThat(h.machine.runState()).isEqualTo(RunState.RUNNING);
        h.disks.failNext(Op.WRITE, Errno.ENOSPC, 1);
        g.submit(0, T_OUT, 0, Harness.buffer(0), 512, false, 2);
        g.kick(0);
        h.awaitTrue(() -> h.machine.runState() == RunState.IO_ERROR, "stop on ENOSPC");
        assertThat(ioErrors().getLast().data()).containsEntry("action", "stop").containsEntry("nospace", true);
        h.await(h.machine.vmStart());
        c.awaitCount(h, g, 0, 2);
        assertThat(c.status(2)).isEqualTo(S_OK);
    }

    @Test
    void aFailedFlushFollowsTheWritePolicy() {
        up(Harness.simulated(6, 1), "werror=report,rerror=ignore");
        h.disks.failNext(Op.FLUSH, Errno.EIO, 1);
        Completions c = new Completions();
        g.submit(0, T_FLUSH, 0, 0, 0, false, 1);
        g.kick(0);
        c.awaitCount(h, g, 0, 1);
        assertThat(c.status(1)).isEqualTo(S_IOERR);
    }

    @Test
    void failedDiscardAndWriteZeroesFollowTheWritePolicy() {
        up(Harness.simulated(7, 1), "werror=report");
        h.disks.failNext(Op.DISCARD, Errno.EIO, 1);
        h.disks.failNext(Op.ZEROES, Errno.EIO, 1);
        Completions c = new Completions();
        g.submitRange(0, T_DISCARD, 0, 8, 0, 1);
        g.submitRange(0, T_WRITE_ZEROES, 0, 8, 0, 2);
        g.kick(0);
        c.awaitCount(h, g, 0, 2);
        assertThat(c.status(1)).isEqualTo(S_IOERR);
        assertThat(c.status(2)).isEqualTo(S_IOERR);
    }
}
