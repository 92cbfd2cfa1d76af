package io.modemu.migration.rdmasim.verbs;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The simulated link sits in the data path: a request waits for its modelled arrival before it lands. */
class LinkSimulationTest {
    @RegisterExtension
    final TestFabric fabric = new TestFabric();
    private final Arena arena = fabric.arena();

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"an hour of latency", "one byte per second"})
    void aRequestIsHeldInFlightUntilItsModelledArrival(String link) throws Exception {
        FabricSettings s = link.startsWith("an hour") ? fabric.settings().withLatency(Duration.ofHours(1)) : fabric.settings().withBandwidth(1);
        RdmaDevice slow = fabric.device(s);
        TestFabric.Pair p = fabric.connect(slow, fabric.device(), ConnectionParameters.defaults(), ConnectionParameters.defaults(), 8);
        MemoryRegion src = p.a().pd().register(arena.allocate(4096));
        src.segment().fill((byte) 9);
        SharedMemory sm = p.b().device().allocateShared(4096);
        MemoryRegion dst = p.b().pd().register(sm.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        p.a().qp().postSend(new SendWorkRequest.RdmaWrite(1, List.of(ScatterGatherElement.of(src)), dst.address(), dst.rkey(), true));
        QueuePair qp = p.a().qp();
        long deadline = System.nanoTime() + TestFabric.WAIT.toNanos();
        while (true) {
            qp.lock.lock();
            try {
                if (qp.inFlight != null && qp.pending.isEmpty() && qp.link.sendThread().getState() == Thread.State.TIMED_WAITING) {
                    break;
                }
            } finally {
                qp.lock.unlock();
            }
            assertThat(System.nanoTime()).as("the send thread waits for the arrival time").isLessThan(deadline);
            Thread.sleep(2);
        }
        assertThat(sm.segment().mismatch(MemorySegment.ofArray(new byte[4096]))).as("nothing landed yet").isEqualTo(-1);
        assertThat(p.a().cq().poll()).isNull();
        // a disconnect wakes the send thread; the held request is flushed, not written
        p.a().connection().disconnect();
        WorkCompletion wc = TestFabric.next(p.a().cq());
        assertThat(wc.status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
        qp.link.sendThread().join(TestFabric.WAIT.toMillis());
        assertThat(sm.segment().mismatch(MemorySegment.ofArray(new byte[4096]))).as("the flushed write never landed").isEqualTo(-1);
    }
}
