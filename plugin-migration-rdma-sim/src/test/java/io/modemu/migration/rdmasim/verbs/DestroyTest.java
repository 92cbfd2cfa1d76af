package io.modemu.migration.rdmasim.verbs;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Destroying a queue pair ({@code ibv_destroy_qp}), or moving it to RESET (its requests dropped): once
 * {@link QueuePair#close()} or {@link QueuePair#modify} returns, nothing of that queue pair touches
 * memory any more, so its owner may free its buffers at once.
 */
class DestroyTest {
    private static final long SIZE = 64L << 20;

    @RegisterExtension
    final TestFabric fabric = new TestFabric();

    @org.junit.jupiter.params.ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"close", "modify to RESET"})
    void aQueuePairDestroyedOrResetWhileAWriteCopiesReturnsOnlyOnceTheCopyIsDone(String how) throws Exception {
        FabricLogs.capture();
        TestFabric.Pair p = fabric.connect();
        SharedMemory target = p.b().device().allocateShared(SIZE);
        MemoryRegion remote = p.b().pd().register(target.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        Arena own = Arena.ofShared();
        MemorySegment source = own.allocate(SIZE, 4096);
        source.fill((byte) 3);
        QueuePair qp = p.a().qp();
        MemoryRegion local = qp.protectionDomain().register(source);
        qp.postSend(new SendWorkRequest.RdmaWrite(1, List.of(ScatterGatherElement.of(local)), remote.address(), remote.rkey(), true));
        // the send thread has taken the write: it copies 64 MiB into pages it maps as it goes
        long deadline = System.nanoTime() + TestFabric.WAIT.toNanos();
        while (!executing(qp)) {
            assertThat(System.nanoTime()).as("the write never started").isLessThan(deadline);
            Thread.onSpinWait();
        }
        if (how.equals("close")) {
            qp.close();
        } else {
            qp.modify(QpState.RESET);
        }
        assertThat(executing(qp)).as("%s returned while the write still executes", how).isFalse();
        // the owner frees the source at once, as it may once the queue pair is destroyed
        own.close();
        Thread.sleep(200);
        assertThat(FabricLogs.unforeseen()).as("the fabric touched freed memory").isEmpty();
        // and nothing of it is left inside the peer's region: the peer deregisters it at once (it used to wait
        // its 5 s deregistration timeout, for a prefetcher whose mapping was closed under it)
        long t0 = System.nanoTime();
        remote.deregister();
        assertThat((System.nanoTime() - t0) / 1_000_000).as("ms to deregister the peer's region").isLessThan(2_000);
    }

    private static boolean executing(QueuePair qp) {
        qp.lock.lock();
        try {
            return qp.inFlight != null;
        } finally {
            qp.lock.unlock();
        }
    }
}
