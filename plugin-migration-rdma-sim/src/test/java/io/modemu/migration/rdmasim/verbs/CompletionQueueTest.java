package io.modemu.migration.rdmasim.verbs;

import static io.modemu.migration.rdmasim.verbs.TestFabric.next;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class CompletionQueueTest {
    @RegisterExtension
    final TestFabric fabric = new TestFabric();
    private final Arena arena = fabric.arena();

    private record Writer(TestFabric.Pair pair, MemoryRegion src, MemoryRegion dst) {
        SendWorkRequest write(long id, boolean signaled) {
            return new SendWorkRequest.RdmaWrite(id, List.of(ScatterGatherElement.of(src, 0, 64)), dst.address(), dst.rkey(), signaled);
        }
    }

    private Writer writer(TestFabric.Pair p) throws IOException {
        MemoryRegion src = p.a().pd().register(arena.allocate(4096));
        SharedMemory sm = p.b().device().allocateShared(4096);
        MemoryRegion dst = p.b().pd().register(sm.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        return new Writer(p, src, dst);
    }

    /** A pair whose A side has its own queue sizes. */
    private TestFabric.Pair pair(int cqCapacity, int maxSendWr, boolean signalAll) {
        RdmaDevice da = fabric.device();
        RdmaDevice db = fabric.device();
        ProtectionDomain pdA = da.allocateProtectionDomain();
        CompletionQueue cqA = da.createCompletionQueue(cqCapacity);
        QueuePair qpA = pdA.createQueuePair(QueuePairConfig.of(cqA, maxSendWr, 4).withSignalAll(signalAll));
        ProtectionDomain pdB = db.allocateProtectionDomain();
        CompletionQueue cqB = db.createCompletionQueue(64);
        QueuePair qpB = pdB.createQueuePair(QueuePairConfig.of(cqB, 16, 16));
        try (ConnectionListener l = db.listen(TestFabric.loopback())) {
            CompletableFuture<Connection> b = CompletableFuture.supplyAsync(() -> {
                try {
                    return l.accept(TestFabric.WAIT).accept(qpB, ConnectionParameters.defaults());
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            Connection ca = da.connect(l.localAddress(), qpA, ConnectionParameters.defaults(), TestFabric.WAIT);
            return new TestFabric.Pair(new TestFabric.Side(da, pdA, cqA, qpA, ca), new TestFabric.Side(db, pdB, cqB, qpB, b.join()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void unsignaledSuccessesMakeNoCompletionAndHoldTheirSlotsUntilASignaledOneCompletes() throws Exception {
        Writer w = writer(pair(16, 4, false));
        QueuePair qp = w.pair().a().qp();
        for (int i = 0; i < 3; i++) {
            qp.postSend(w.write(i, false));
        }
        qp.postSend(w.write(3, true));
        WorkCompletion wc = next(w.pair().a().cq());
        assertThat(wc.wrId()).isEqualTo(3);
        assertThat(w.pair().a().cq().poll()).isNull();
        for (int i = 4; i < 8; i++) {
            qp.postSend(w.write(i, false));
        }
        assertThatThrownBy(() -> qp.postSend(w.write(8, true))).isInstanceOf(VerbsException.class)
                .hasMessageContaining("send queue full").hasMessageContaining("signal requests");
    }

    @Test
    void signalAllMakesEveryRequestComplete() throws Exception {
        Writer w = writer(pair(16, 4, true));
        for (int i = 0; i < 3; i++) {
            w.pair().a().qp().postSend(w.write(i, false));
        }
        for (int i = 0; i < 3; i++) {
            assertThat(next(w.pair().a().cq()).wrId()).isEqualTo(i);
        }
    }

    @Test
    void anOverflowBreaksTheQueueAndTakesItsQueuePairsToError() throws Exception {
        Writer w = writer(pair(2, 8, false));
        for (int i = 0; i < 3; i++) {
            w.pair().a().qp().postSend(w.write(i, true));
        }
        TestFabric.awaitState(w.pair().a().qp(), QpState.ERROR);
        assertThatThrownBy(() -> w.pair().a().cq().poll(8)).isInstanceOf(VerbsException.class)
                .hasMessageContaining("overflowed").hasMessageContaining("2 entries")
                .extracting(e -> ((VerbsException) e).reason()).isEqualTo(VerbsException.Reason.CQ_OVERRUN);
        TestFabric.awaitState(w.pair().b().qp(), QpState.ERROR);
    }

    @Test
    void awaitReturnsFalseWhenNothingCompletes() throws Exception {
        CompletionQueue cq = fabric.device().createCompletionQueue(4);
        assertThat(cq.await(Duration.ofMillis(1))).isFalse();
        assertThat(cq.take(Duration.ofMillis(1))).isNull();
    }

    @Test
    void aQueueInUseCannotBeDestroyed() {
        RdmaDevice d = fabric.device();
        CompletionQueue cq = d.createCompletionQueue(4);
        QueuePair qp = d.allocateProtectionDomain().createQueuePair(QueuePairConfig.of(cq, 1, 1));
        assertThatThrownBy(cq::close).hasMessageContaining("used by 1 queue pairs");
        qp.close();
        cq.close();
        assertThatThrownBy(() -> cq.poll(1)).hasMessageContaining("destroyed");
    }

    @Test
    void completionsOfOneQueueComeOutInPostingOrderAcrossOpcodes() throws Exception {
        Writer w = writer(pair(64, 32, true));
        MemoryRegion in = w.pair().b().pd().register(arena.allocate(64 * 32), Access.LOCAL_WRITE);
        for (int i = 0; i < 32; i++) {
            w.pair().b().qp().postRecv(ReceiveWorkRequest.of(i, ScatterGatherElement.of(in, i * 64L, 64)));
            if (i == 15) {
                break;
            }
        }
        for (int i = 0; i < 32; i++) {
            SendWorkRequest r = i % 2 == 0 ? w.write(i, true) : new SendWorkRequest.Send(i, List.of(ScatterGatherElement.of(w.src(), 0, 8)), true);
            w.pair().a().qp().postSend(r);
        }
        for (int i = 0; i < 32; i++) {
            WorkCompletion wc = next(w.pair().a().cq());
            assertThat(wc.wrId()).isEqualTo(i);
            assertThat(wc.status()).isEqualTo(WcStatus.SUCCESS);
            assertThat(wc.opcode()).isEqualTo(i % 2 == 0 ? WcOpcode.RDMA_WRITE : WcOpcode.SEND);
        }
    }
}
