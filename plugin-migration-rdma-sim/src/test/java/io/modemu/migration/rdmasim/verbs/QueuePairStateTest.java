package io.modemu.migration.rdmasim.verbs;

import static io.modemu.migration.rdmasim.verbs.TestFabric.next;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class QueuePairStateTest {
    @RegisterExtension
    final TestFabric fabric = new TestFabric();
    private final Arena arena = fabric.arena();

    private static final Set<QpState> FROM_RESET = EnumSet.of(QpState.RESET, QpState.INIT, QpState.ERROR);
    private static final Set<QpState> FROM_INIT = EnumSet.of(QpState.RESET, QpState.INIT, QpState.RTR, QpState.ERROR);
    private static final Set<QpState> FROM_RTS = EnumSet.of(QpState.RESET, QpState.RTS, QpState.ERROR);
    private static final Set<QpState> FROM_ERROR = EnumSet.of(QpState.RESET, QpState.ERROR);

    @Test
    void theTransitionTableIsVerbsOne() {
        for (QpState from : QpState.values()) {
            for (QpState to : QpState.values()) {
                boolean expected = switch (from) {
                    case RESET -> FROM_RESET.contains(to);
                    case INIT -> FROM_INIT.contains(to);
                    case RTR -> to == QpState.RTS || to == QpState.RESET || to == QpState.ERROR;
                    case RTS -> FROM_RTS.contains(to);
                    case ERROR -> FROM_ERROR.contains(to);
                };
                assertThat(from.canMoveTo(to)).as(from + " → " + to).isEqualTo(expected);
            }
        }
    }

    private QueuePair fresh() {
        RdmaDevice d = fabric.device();
        ProtectionDomain pd = d.allocateProtectionDomain();
        CompletionQueue cq = d.createCompletionQueue(16);
        return pd.createQueuePair(QueuePairConfig.of(cq, 4, 4));
    }

    @Test
    void illegalTransitionsAreRefusedNamingBothStates() {
        QueuePair qp = fresh();
        assertThat(qp.state()).isEqualTo(QpState.RESET);
        assertThatThrownBy(() -> qp.modify(QpState.RTS)).isInstanceOf(VerbsException.class)
                .hasMessageContaining("cannot go from RESET to RTS").hasMessageContaining("[RESET, INIT, ERROR]");
        qp.modify(QpState.INIT);
        assertThatThrownBy(() -> qp.modify(QpState.RTS)).hasMessageContaining("cannot go from INIT to RTS");
        assertThatThrownBy(() -> qp.modify(QpState.RTR)).hasMessageContaining("RTR needs the remote queue pair");
        qp.modify(QpState.ERROR);
        assertThatThrownBy(() -> qp.modify(QpState.INIT)).hasMessageContaining("cannot go from ERROR to INIT");
        qp.modify(QpState.RESET);
        qp.modify(QpState.INIT);
        assertThat(qp.state()).isEqualTo(QpState.INIT);
    }

    @Test
    void aConnectedQueuePairIsInRtsAndCannotGoBack() {
        TestFabric.Pair p = fabric.connect();
        assertThat(p.a().qp().state()).isEqualTo(QpState.RTS);
        assertThat(p.b().qp().state()).isEqualTo(QpState.RTS);
        assertThatThrownBy(() -> p.a().qp().modify(QpState.INIT)).hasMessageContaining("cannot go from RTS to INIT");
        assertThatThrownBy(() -> p.a().qp().modify(QpState.RTR)).hasMessageContaining("cannot go from RTS to RTR");
        p.a().qp().modify(QpState.RTS);
        assertThat(p.a().qp().state()).isEqualTo(QpState.RTS);
    }

    @Test
    void sendsNeedRtsAndReceivesNeedInit() {
        QueuePair qp = fresh();
        MemoryRegion mr = qp.protectionDomain().register(arena.allocate(64), Access.LOCAL_WRITE);
        SendWorkRequest send = new SendWorkRequest.Send(1, List.of(ScatterGatherElement.of(mr)), true);
        ReceiveWorkRequest recv = ReceiveWorkRequest.of(2, ScatterGatherElement.of(mr));
        assertThatThrownBy(() -> qp.postSend(send)).isInstanceOf(VerbsException.class).hasMessageContaining("post_send in RESET")
                .extracting(e -> ((VerbsException) e).reason()).isEqualTo(VerbsException.Reason.INVALID_STATE);
        assertThatThrownBy(() -> qp.postRecv(recv)).hasMessageContaining("post_recv in RESET");
        qp.modify(QpState.INIT);
        assertThatThrownBy(() -> qp.postSend(send)).hasMessageContaining("post_send in INIT");
        qp.postRecv(recv);
        assertThat(qp.config().recvCq().poll()).as("a receive posted in INIT waits").isNull();
    }

    @Test
    void anythingPostedInErrorCompletesFlushed() {
        QueuePair qp = fresh();
        MemoryRegion mr = qp.protectionDomain().register(arena.allocate(64), Access.LOCAL_WRITE);
        qp.modify(QpState.INIT);
        qp.postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(mr)));
        qp.modify(QpState.ERROR);
        WorkCompletion flushed = next(qp.config().recvCq());
        assertThat(flushed.wrId()).isEqualTo(1);
        assertThat(flushed.status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
        qp.postSend(new SendWorkRequest.Send(2, List.of(ScatterGatherElement.of(mr)), false));
        qp.postRecv(ReceiveWorkRequest.of(3, ScatterGatherElement.of(mr)));
        WorkCompletion s = next(qp.config().sendCq());
        assertThat(s.wrId()).isEqualTo(2);
        assertThat(s.status()).as("even unsignaled").isEqualTo(WcStatus.WR_FLUSH_ERR);
        assertThat(next(qp.config().recvCq()).status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
    }

    @Test
    void resetDropsPostedWorkWithoutCompletions() {
        QueuePair qp = fresh();
        MemoryRegion mr = qp.protectionDomain().register(arena.allocate(64), Access.LOCAL_WRITE);
        qp.modify(QpState.INIT);
        qp.postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(mr)));
        qp.modify(QpState.RESET);
        qp.modify(QpState.ERROR);
        assertThat(qp.config().recvCq().poll()).isNull();
    }

    @Test
    void movingAConnectedQueuePairToErrorFlushesAndTakesThePeerToError() {
        TestFabric.Pair p = fabric.connect();
        MemoryRegion in = p.b().pd().register(arena.allocate(64), Access.LOCAL_WRITE);
        p.b().qp().postRecv(ReceiveWorkRequest.of(7, ScatterGatherElement.of(in)));
        p.a().qp().modify(QpState.ERROR);
        TestFabric.awaitState(p.b().qp(), QpState.ERROR);
        WorkCompletion wc = next(p.b().cq());
        assertThat(wc.wrId()).isEqualTo(7);
        assertThat(wc.status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
        assertThat(wc.detail()).contains("moved to ERROR by the application");
        assertThat(p.b().qp().errorReason()).contains("went to ERROR");
        assertThat(p.a().connection().isConnected()).isFalse();
        assertThat(p.b().connection().disconnected().toCompletableFuture().join()).contains("went to ERROR");
    }

    @Test
    void aDestroyedQueuePairRefusesEveryVerb() {
        QueuePair qp = fresh();
        qp.close();
        assertThatThrownBy(() -> qp.modify(QpState.INIT)).hasMessageContaining("is destroyed");
        assertThatThrownBy(() -> qp.postRecv(new ReceiveWorkRequest(1, List.of()))).hasMessageContaining("is destroyed");
    }

    @Test
    void tooManyScatterGatherElementsAreRefused() {
        QueuePair qp = fresh();
        MemoryRegion mr = qp.protectionDomain().register(arena.allocate(64), Access.LOCAL_WRITE);
        qp.modify(QpState.INIT);
        List<ScatterGatherElement> five = List.of(ScatterGatherElement.of(mr), ScatterGatherElement.of(mr), ScatterGatherElement.of(mr),
                ScatterGatherElement.of(mr), ScatterGatherElement.of(mr));
        assertThatThrownBy(() -> qp.postRecv(new ReceiveWorkRequest(1, five))).hasMessageContaining("max_recv_sge is 4");
    }
}
