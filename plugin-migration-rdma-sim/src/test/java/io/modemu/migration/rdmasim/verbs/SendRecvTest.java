package io.modemu.migration.rdmasim.verbs;

import static io.modemu.migration.rdmasim.verbs.TestFabric.next;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class SendRecvTest {
    @RegisterExtension
    final TestFabric fabric = new TestFabric();
    private final Arena arena = fabric.arena();

    private MemoryRegion buffer(TestFabric.Side side, int size, Access... access) {
        return side.pd().register(arena.allocate(size, 64), access);
    }

    private static SendWorkRequest send(long wrId, MemoryRegion mr, int offset, int length) {
        return new SendWorkRequest.Send(wrId, List.of(ScatterGatherElement.of(mr, offset, length)), true);
    }

    @Test
    void messagesFillPostedReceivesInOrderScatteringAcrossElements() {
        TestFabric.Pair p = fabric.connect();
        MemoryRegion out = buffer(p.a(), 64 * 100);
        MemoryRegion in = buffer(p.b(), 64 * 100, Access.LOCAL_WRITE);
        for (int i = 0; i < 100; i++) {
            out.segment().set(ValueLayout.JAVA_LONG, i * 64L, 1000 + i);
            out.segment().set(ValueLayout.JAVA_LONG, i * 64L + 40, 5000 + i);
        }
        for (int i = 0; i < 50; i++) {
            // two elements: 40 bytes then 24 bytes, in different places of the buffer
            p.b().qp().postRecv(new ReceiveWorkRequest(i, List.of(ScatterGatherElement.of(in, i * 64L, 40),
                    ScatterGatherElement.of(in, 64L * 50 + i * 64L, 24))));
        }
        for (int i = 0; i < 50; i++) {
            p.a().qp().postSend(send(100 + i, out, i * 64, 64));
        }
        for (int i = 0; i < 50; i++) {
            WorkCompletion r = next(p.b().cq());
            assertThat(r.status()).isEqualTo(WcStatus.SUCCESS);
            assertThat(r.opcode()).isEqualTo(WcOpcode.RECV);
            assertThat(r.wrId()).isEqualTo(i);
            assertThat(r.byteLength()).isEqualTo(64);
            assertThat(r.hasImmediate()).isFalse();
            assertThat(in.segment().get(ValueLayout.JAVA_LONG, i * 64L)).isEqualTo(1000 + i);
            assertThat(in.segment().get(ValueLayout.JAVA_LONG, 64L * 50 + i * 64L)).isEqualTo(5000 + i);
            WorkCompletion s = next(p.a().cq());
            assertThat(s.status()).isEqualTo(WcStatus.SUCCESS);
            assertThat(s.opcode()).isEqualTo(WcOpcode.SEND);
            assertThat(s.wrId()).isEqualTo(100 + i);
        }
    }

    @Test
    void sendWithImmediateDeliversTheImmediateToTheReceiver() {
        TestFabric.Pair p = fabric.connect();
        MemoryRegion out = buffer(p.a(), 16);
        MemoryRegion in = buffer(p.b(), 16, Access.LOCAL_WRITE);
        p.b().qp().postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(in)));
        p.a().qp().postSend(new SendWorkRequest.SendWithImmediate(2, List.of(ScatterGatherElement.of(out, 0, 8)), 0x12345678, true));
        WorkCompletion r = next(p.b().cq());
        assertThat(r.status()).isEqualTo(WcStatus.SUCCESS);
        assertThat(r.opcode()).isEqualTo(WcOpcode.RECV);
        assertThat(r.hasImmediate()).isTrue();
        assertThat(r.immediate()).isEqualTo(0x12345678);
        assertThat(r.byteLength()).isEqualTo(8);
        assertThat(next(p.a().cq()).status()).isEqualTo(WcStatus.SUCCESS);
    }

    @Test
    void aMessageLongerThanTheReceiveBufferFailsOnBothSides() {
        TestFabric.Pair p = fabric.connect();
        MemoryRegion out = buffer(p.a(), 4096);
        MemoryRegion in = buffer(p.b(), 4096, Access.LOCAL_WRITE);
        p.b().qp().postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(in, 0, 100)));
        p.b().qp().postRecv(ReceiveWorkRequest.of(2, ScatterGatherElement.of(in, 100, 100)));
        p.a().qp().postSend(send(10, out, 0, 101));
        WorkCompletion r = next(p.b().cq());
        assertThat(r.wrId()).isEqualTo(1);
        assertThat(r.status()).isEqualTo(WcStatus.LOC_LEN_ERR);
        assertThat(r.detail()).contains("101 bytes does not fit receive wr_id 1 of 100 bytes");
        assertThat(next(p.b().cq()).status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
        WorkCompletion s = next(p.a().cq());
        assertThat(s.status()).isEqualTo(WcStatus.REM_INV_REQ_ERR);
        assertThat(s.detail()).contains("does not fit");
        TestFabric.awaitState(p.a().qp(), QpState.ERROR);
        TestFabric.awaitState(p.b().qp(), QpState.ERROR);
    }

    @Test
    void aReceiveBufferWithoutLocalWriteFailsTheReceiveAndTheSend() {
        TestFabric.Pair p = fabric.connect();
        MemoryRegion out = buffer(p.a(), 64);
        MemoryRegion in = buffer(p.b(), 64);
        p.b().qp().postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(in)));
        p.a().qp().postSend(send(10, out, 0, 64));
        WorkCompletion r = next(p.b().cq());
        assertThat(r.status()).isEqualTo(WcStatus.LOC_PROT_ERR);
        assertThat(r.detail()).contains("without LOCAL_WRITE");
        assertThat(next(p.a().cq()).status()).isEqualTo(WcStatus.REM_OP_ERR);
    }

    @Test
    void aMessageThatFindsNoReceiveWaitsForOneWhenRetriedForever() throws Exception {
        TestFabric.Pair p = fabric.connect();
        MemoryRegion out = buffer(p.a(), 64);
        MemoryRegion in = buffer(p.b(), 64 * 3, Access.LOCAL_WRITE);
        for (int i = 0; i < 3; i++) {
            out.segment().set(ValueLayout.JAVA_BYTE, i, (byte) (i + 1));
            p.a().qp().postSend(send(i, out, i, 1));
        }
        // nothing can complete before a receive is posted: the sender waits, receiver-not-ready
        assertThat(p.a().cq().await(Duration.ofMillis(50))).isFalse();
        for (int i = 0; i < 3; i++) {
            p.b().qp().postRecv(ReceiveWorkRequest.of(i, ScatterGatherElement.of(in, i * 64L, 64)));
        }
        for (int i = 0; i < 3; i++) {
            WorkCompletion r = next(p.b().cq());
            assertThat(r.wrId()).isEqualTo(i);
            assertThat(r.status()).isEqualTo(WcStatus.SUCCESS);
            assertThat(in.segment().get(ValueLayout.JAVA_BYTE, i * 64L)).isEqualTo((byte) (i + 1));
            assertThat(next(p.a().cq()).wrId()).isEqualTo(i);
        }
    }

    @Test
    void withRnrRetryZeroAMessageThatFindsNoReceiveFailsAndTheWriteBehindItNeverLands() throws Exception {
        TestFabric.Pair p = fabric.connect(ConnectionParameters.defaults().rnrRetry(0), ConnectionParameters.defaults(), 16);
        MemoryRegion out = buffer(p.a(), 4096);
        out.segment().fill((byte) 7);
        SharedMemory sm = p.b().device().allocateShared(4096);
        MemoryRegion target = p.b().pd().register(sm.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        p.a().qp().postSend(send(1, out, 0, 64));
        p.a().qp().postSend(new SendWorkRequest.RdmaWrite(2, List.of(ScatterGatherElement.of(out)), target.address(), target.rkey(), true));
        WorkCompletion failed = next(p.a().cq());
        assertThat(failed.wrId()).isEqualTo(1);
        assertThat(failed.status()).isEqualTo(WcStatus.RNR_RETRY_EXC_ERR);
        assertThat(failed.detail()).contains("had no receive posted");
        WorkCompletion flushed = next(p.a().cq());
        assertThat(flushed.wrId()).isEqualTo(2);
        assertThat(flushed.status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
        assertThat(sm.segment().mismatch(MemorySegment.ofArray(new byte[4096])))
                .as("a write posted behind a message waits for it, so it never lands when the message fails").isEqualTo(-1);
    }

    @Test
    void aWriteWaitsUntilEveryEarlierMessageIsAcknowledged() throws Exception {
        TestFabric.Pair p = fabric.connect();
        MemoryRegion out = buffer(p.a(), 4096);
        out.segment().fill((byte) 7);
        SharedMemory sm = p.b().device().allocateShared(4096);
        MemoryRegion target = p.b().pd().register(sm.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        MemoryRegion in = buffer(p.b(), 64, Access.LOCAL_WRITE);
        p.a().qp().postSend(send(1, out, 0, 64));
        p.a().qp().postSend(new SendWorkRequest.RdmaWrite(2, List.of(ScatterGatherElement.of(out)), target.address(), target.rkey(), true));
        // the message waits at B for a receive; A's send thread has nothing it may do but wait
        QueuePair a = p.a().qp();
        QueuePair b = p.b().qp();
        long deadline = System.nanoTime() + TestFabric.WAIT.toNanos();
        while (true) {
            boolean held;
            boolean fenced;
            b.lock.lock();
            try {
                held = b.backlog.size() == 1;
            } finally {
                b.lock.unlock();
            }
            a.lock.lock();
            try {
                fenced = a.pending.size() == 1 && a.inFlight == null && a.awaitingAck.size() == 1
                        && a.link.sendThread().getState() == Thread.State.WAITING;
            } finally {
                a.lock.unlock();
            }
            if (held && fenced) {
                break;
            }
            assertThat(System.nanoTime()).as("the write stays queued behind the unacknowledged message").isLessThan(deadline);
            Thread.sleep(2);
        }
        assertThat(sm.segment().mismatch(MemorySegment.ofArray(new byte[4096]))).isEqualTo(-1);
        b.postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(in)));
        assertThat(next(p.a().cq()).wrId()).isEqualTo(1);
        assertThat(next(p.a().cq()).wrId()).isEqualTo(2);
        assertThat(sm.segment().get(ValueLayout.JAVA_BYTE, 4095)).isEqualTo((byte) 7);
    }

    @Test
    void withFewRnrRetriesAMessageThatFindsNoReceiveFailsWhenTheyRunOut() {
        ConnectionParameters few = ConnectionParameters.defaults().rnrRetry(2).minRnrTimer(Duration.ofMillis(5));
        TestFabric.Pair p = fabric.connect(few, few, 16);
        MemoryRegion out = buffer(p.a(), 64);
        p.a().qp().postSend(send(1, out, 0, 64));
        WorkCompletion failed = next(p.a().cq());
        assertThat(failed.status()).isEqualTo(WcStatus.RNR_RETRY_EXC_ERR);
        assertThat(failed.detail()).contains("rnr_retry 2");
        TestFabric.awaitState(p.a().qp(), QpState.ERROR);
        TestFabric.awaitState(p.b().qp(), QpState.ERROR);
    }

    @Test
    void aSendLongerThanTheDevicesMaximumMessageIsALocalLengthError() {
        RdmaDevice small = fabric.device(fabric.settings().withMaxMessageSize(1024));
        TestFabric.Pair p = fabric.connect(small, fabric.device(), ConnectionParameters.defaults(), ConnectionParameters.defaults(), 8);
        MemoryRegion out = buffer(p.a(), 4096);
        p.a().qp().postSend(send(1, out, 0, 1025));
        WorkCompletion wc = next(p.a().cq());
        assertThat(wc.status()).isEqualTo(WcStatus.LOC_LEN_ERR);
        assertThat(wc.detail()).contains("maximum message size 1024");
    }

    @Test
    void aWriteFollowedByASendIsVisibleWhenTheReceiveCompletes() throws Exception {
        TestFabric.Pair p = fabric.connect();
        MemoryRegion out = buffer(p.a(), 1 << 16);
        out.segment().fill((byte) 0x5A);
        SharedMemory sm = p.b().device().allocateShared(1 << 16);
        MemoryRegion target = p.b().pd().register(sm.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        MemoryRegion in = buffer(p.b(), 64, Access.LOCAL_WRITE);
        for (int round = 0; round < 20; round++) {
            byte v = (byte) round;
            out.segment().fill(v);
            p.b().qp().postRecv(ReceiveWorkRequest.of(round, ScatterGatherElement.of(in)));
            p.a().qp().postSend(new SendWorkRequest.RdmaWrite(2 * round, List.of(ScatterGatherElement.of(out)), target.address(), target.rkey(), false));
            p.a().qp().postSend(send(2 * round + 1, out, 0, 8));
            assertThat(next(p.b().cq()).status()).isEqualTo(WcStatus.SUCCESS);
            assertThat(sm.segment().get(ValueLayout.JAVA_BYTE, (1 << 16) - 1)).isEqualTo(v);
            assertThat(next(p.a().cq()).wrId()).isEqualTo(2 * round + 1);
        }
    }

    @Test
    void postingBeyondTheReceiveQueueDepthIsRefused() {
        TestFabric.Pair p = fabric.connect(ConnectionParameters.defaults(), ConnectionParameters.defaults(), 2);
        MemoryRegion in = buffer(p.b(), 64, Access.LOCAL_WRITE);
        p.b().qp().postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(in)));
        p.b().qp().postRecv(ReceiveWorkRequest.of(2, ScatterGatherElement.of(in)));
        assertThatThrownBy(() -> p.b().qp().postRecv(ReceiveWorkRequest.of(3, ScatterGatherElement.of(in))))
                .isInstanceOf(VerbsException.class).hasMessageContaining("max_recv_wr 2")
                .extracting(e -> ((VerbsException) e).reason()).isEqualTo(VerbsException.Reason.QUEUE_FULL);
    }
}
