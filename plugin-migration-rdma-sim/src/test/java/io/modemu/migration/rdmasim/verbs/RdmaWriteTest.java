package io.modemu.migration.rdmasim.verbs;

import static io.modemu.migration.rdmasim.verbs.TestFabric.next;
import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class RdmaWriteTest {
    @RegisterExtension
    final TestFabric fabric = new TestFabric(mappedWrites());
    private TestFabric.Pair pair;
    private final Arena arena = fabric.arena();
    private MemoryRegion src;
    private SharedMemory targetMemory;
    private MemoryRegion target;

    /** Whether the writer copies through a mapping of the target's file ({@link RdmaWriteWithPwriteTest}: positional writes). */
    boolean mappedWrites() {
        return true;
    }

    @BeforeEach
    void setUp() throws Exception {
        pair = fabric.connect();
        MemorySegment s = arena.allocate(1 << 20, 4096);
        byte[] random = new byte[1 << 20];
        new Random(42).nextBytes(random);
        MemorySegment.copy(MemorySegment.ofArray(random), 0, s, 0, random.length);
        src = pair.a().pd().register(s);
        targetMemory = pair.b().device().allocateShared(1 << 20);
        target = pair.b().pd().register(targetMemory.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
    }

    private static SendWorkRequest write(long wrId, MemoryRegion local, long offset, int length, long remoteAddress, int rkey) {
        return new SendWorkRequest.RdmaWrite(wrId, List.of(ScatterGatherElement.of(local, offset, length)), remoteAddress, rkey, true);
    }

    private void assertBothInError() {
        TestFabric.awaitState(pair.a().qp(), QpState.ERROR);
        TestFabric.awaitState(pair.b().qp(), QpState.ERROR);
    }

    @Test
    void writeLandsInTheRemoteRegionWithNoHelpFromTheTarget() {
        pair.a().qp().postSend(write(1, src, 4096, 65536, target.address() + 8192, target.rkey()));
        WorkCompletion wc = next(pair.a().cq());
        assertThat(wc.status()).isEqualTo(WcStatus.SUCCESS);
        assertThat(wc.opcode()).isEqualTo(WcOpcode.RDMA_WRITE);
        assertThat(wc.wrId()).isEqualTo(1);
        assertThat(targetMemory.segment().asSlice(8192, 65536).mismatch(src.segment().asSlice(4096, 65536))).isEqualTo(-1);
        assertThat(targetMemory.segment().get(ValueLayout.JAVA_BYTE, 8191)).isZero();
        assertThat(pair.b().cq().poll()).as("a plain RDMA WRITE consumes nothing at the target").isNull();
    }

    @Test
    void aSendPostedAfterWritesIsReceivedOnlyOnceTheWritesAreVisible() {
        // a SEND posted with the queue empty goes out on the posting thread; one posted behind a WRITE that has not
        // executed yet must wait for it: either way the receive completes with the WRITE's data in place
        MemoryRegion stamps = pair.a().pd().register(arena.allocate(16 * 8, 64));
        MemoryRegion in = pair.b().pd().register(arena.allocate(8, 64), Access.LOCAL_WRITE);
        int slot = 64 << 10;
        for (int r = 0; r < 200; r++) {
            int k = r % 16;
            // the write's source: this round's stamp at the head of a 64 KiB slot
            src.segment().set(ValueLayout.JAVA_LONG, (long) k * slot, 1_000_000L + r);
            stamps.segment().set(ValueLayout.JAVA_LONG, k * 8L, r);
            pair.b().qp().postRecv(ReceiveWorkRequest.of(r, ScatterGatherElement.of(in, 0, 8)));
            pair.a().qp().postSend(write(2 * r, src, (long) k * slot, slot, target.address() + (long) k * slot, target.rkey()));
            pair.a().qp().postSend(new SendWorkRequest.Send(2 * r + 1, List.of(ScatterGatherElement.of(stamps, k * 8L, 8)), true));
            WorkCompletion recv = next(pair.b().cq());
            assertThat(recv.status()).isEqualTo(WcStatus.SUCCESS);
            assertThat(in.segment().get(ValueLayout.JAVA_LONG, 0)).isEqualTo(r);
            assertThat(targetMemory.segment().get(ValueLayout.JAVA_LONG, (long) k * slot)).as("round %d: the WRITE before the SEND is visible", r)
                    .isEqualTo(1_000_000L + r);
            assertThat(next(pair.a().cq()).wrId()).isEqualTo(2 * r);
            assertThat(next(pair.a().cq()).wrId()).isEqualTo(2 * r + 1);
        }
    }

    @Test
    void writeGathersSeveralElementsInOrder() {
        List<ScatterGatherElement> sgl = List.of(ScatterGatherElement.of(src, 0, 100), ScatterGatherElement.of(src, 5000, 200),
                ScatterGatherElement.of(src, 100, 50));
        pair.a().qp().postSend(new SendWorkRequest.RdmaWrite(7, sgl, target.address(), target.rkey(), true));
        assertThat(next(pair.a().cq()).status()).isEqualTo(WcStatus.SUCCESS);
        MemorySegment t = targetMemory.segment();
        assertThat(t.asSlice(0, 100).mismatch(src.segment().asSlice(0, 100))).isEqualTo(-1);
        assertThat(t.asSlice(100, 200).mismatch(src.segment().asSlice(5000, 200))).isEqualTo(-1);
        assertThat(t.asSlice(300, 50).mismatch(src.segment().asSlice(100, 50))).isEqualTo(-1);
    }

    @Test
    void writeWithImmediateConsumesAReceiveThatCarriesTheImmediate() {
        pair.b().qp().postRecv(new ReceiveWorkRequest(55, List.of()));
        pair.a().qp().postSend(new SendWorkRequest.RdmaWriteWithImmediate(2, List.of(ScatterGatherElement.of(src, 0, 4096)),
                target.address(), target.rkey(), 0xCAFE, true));
        WorkCompletion sent = next(pair.a().cq());
        WorkCompletion received = next(pair.b().cq());
        assertThat(sent.status()).isEqualTo(WcStatus.SUCCESS);
        assertThat(received.status()).isEqualTo(WcStatus.SUCCESS);
        assertThat(received.opcode()).isEqualTo(WcOpcode.RECV_RDMA_WITH_IMM);
        assertThat(received.wrId()).isEqualTo(55);
        assertThat(received.hasImmediate()).isTrue();
        assertThat(received.immediate()).isEqualTo(0xCAFE);
        assertThat(received.byteLength()).isEqualTo(4096);
        assertThat(targetMemory.segment().asSlice(0, 4096).mismatch(src.segment().asSlice(0, 4096)))
                .as("the data is in place when the receive completes").isEqualTo(-1);
    }

    @Test
    void badRemoteKeyFailsWithRemoteAccessErrorAndBreaksBothQueuePairs() {
        int bogus = target.rkey() ^ 0x5500;
        pair.b().qp().postRecv(new ReceiveWorkRequest(9, List.of()));
        pair.a().qp().postSend(write(1, src, 0, 4096, target.address(), bogus));
        pair.a().qp().postSend(write(2, src, 0, 4096, target.address(), target.rkey()));
        WorkCompletion bad = next(pair.a().cq());
        WorkCompletion flushed = next(pair.a().cq());
        assertThat(bad.status()).isEqualTo(WcStatus.REM_ACCESS_ERR);
        assertThat(bad.detail()).contains(String.format("rkey 0x%x", bogus)).contains("no memory region with this key");
        assertThat(flushed.wrId()).isEqualTo(2);
        assertThat(flushed.status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
        assertBothInError();
        WorkCompletion targetSide = next(pair.b().cq());
        assertThat(targetSide.wrId()).isEqualTo(9);
        assertThat(targetSide.status()).as("the target's receives are flushed").isEqualTo(WcStatus.WR_FLUSH_ERR);
        assertThat(targetMemory.segment().asSlice(0, 4096).mismatch(MemorySegment.ofArray(new byte[4096]))).isEqualTo(-1);
    }

    @Test
    void writePastTheEndOfTheRegionIsRefusedAndNamesTheRegion() {
        long at = target.address() + target.length() - 100;
        pair.a().qp().postSend(write(1, src, 0, 4096, at, target.rkey()));
        WorkCompletion wc = next(pair.a().cq());
        assertThat(wc.status()).isEqualTo(WcStatus.REM_ACCESS_ERR);
        assertThat(wc.detail()).contains(String.format("RDMA WRITE to rkey 0x%x at 0x%x + 4096", target.rkey(), at))
                .contains(String.format("outside the memory region [0x%x, 0x%x)", target.address(), target.address() + target.length()));
        assertThat(targetMemory.segment().asSlice(target.length() - 100, 100).mismatch(MemorySegment.ofArray(new byte[100])))
                .as("nothing of a refused write lands").isEqualTo(-1);
        assertBothInError();
    }

    @Test
    void writeBeforeTheStartOfTheRegionIsRefused() throws Exception {
        MemoryRegion inner = pair.b().pd().register(targetMemory.segment().asSlice(65536, 65536), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        pair.a().qp().postSend(write(1, src, 0, 16, inner.address() - 8, inner.rkey()));
        WorkCompletion wc = next(pair.a().cq());
        assertThat(wc.status()).isEqualTo(WcStatus.REM_ACCESS_ERR);
        assertThat(wc.detail()).contains("outside the memory region");
    }

    @Test
    void writeToARegionWithoutRemoteWriteIsRefused() {
        MemoryRegion readOnly = pair.b().pd().register(targetMemory.segment().asSlice(0, 8192), Access.REMOTE_READ);
        pair.a().qp().postSend(write(1, src, 0, 4096, readOnly.address(), readOnly.rkey()));
        WorkCompletion wc = next(pair.a().cq());
        assertThat(wc.status()).isEqualTo(WcStatus.REM_ACCESS_ERR);
        assertThat(wc.detail()).contains("registered without REMOTE_WRITE");
    }

    @Test
    void writeToADeregisteredRegionIsRefused() {
        int rkey = target.rkey();
        long addr = target.address();
        target.deregister();
        pair.a().qp().postSend(write(1, src, 0, 4096, addr, rkey));
        WorkCompletion wc = next(pair.a().cq());
        assertThat(wc.status()).isEqualTo(WcStatus.REM_ACCESS_ERR);
        assertThat(wc.detail()).contains("deregistered");
    }

    @Test
    void aKeyOfADeregisteredRegionDoesNotReachTheRegionThatReusedItsSlot() {
        int old = target.rkey();
        target.deregister();
        MemoryRegion again = pair.b().pd().register(targetMemory.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        assertThat(again.rkey()).isNotEqualTo(old);
        pair.a().qp().postSend(write(1, src, 0, 4096, again.address(), old));
        assertThat(next(pair.a().cq()).status()).isEqualTo(WcStatus.REM_ACCESS_ERR);
    }

    @Test
    void writeToARegionOfAnotherProtectionDomainIsRefused() {
        ProtectionDomain other = pair.b().device().allocateProtectionDomain();
        MemoryRegion foreign = other.register(targetMemory.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        pair.a().qp().postSend(write(1, src, 0, 4096, foreign.address(), foreign.rkey()));
        WorkCompletion wc = next(pair.a().cq());
        assertThat(wc.status()).isEqualTo(WcStatus.REM_ACCESS_ERR);
        assertThat(wc.detail()).contains("protection domain");
    }

    @Test
    void readCopiesRemoteDataOnlyFromRegionsWithRemoteRead() {
        MemorySegment.copy(src.segment(), 0, targetMemory.segment(), 0, 8192);
        MemoryRegion readable = pair.b().pd().register(targetMemory.segment().asSlice(0, 8192), Access.REMOTE_READ);
        MemorySegment into = arena.allocate(8192);
        MemoryRegion local = pair.a().pd().register(into, Access.LOCAL_WRITE);
        pair.a().qp().postSend(new SendWorkRequest.RdmaRead(1, List.of(ScatterGatherElement.of(local)), readable.address(), readable.rkey(), true));
        WorkCompletion wc = next(pair.a().cq());
        assertThat(wc.status()).isEqualTo(WcStatus.SUCCESS);
        assertThat(wc.opcode()).isEqualTo(WcOpcode.RDMA_READ);
        assertThat(into.mismatch(src.segment().asSlice(0, 8192))).isEqualTo(-1);

        pair.a().qp().postSend(new SendWorkRequest.RdmaRead(2, List.of(ScatterGatherElement.of(local)), target.address(), target.rkey(), true));
        WorkCompletion refused = next(pair.a().cq());
        assertThat(refused.status()).isEqualTo(WcStatus.REM_ACCESS_ERR);
        assertThat(refused.detail()).contains("registered without REMOTE_READ");
    }

    @Test
    void readIntoLocalMemoryWithoutLocalWriteIsALocalProtectionError() {
        MemoryRegion readable = pair.b().pd().register(targetMemory.segment().asSlice(0, 8192), Access.REMOTE_READ);
        pair.a().qp().postSend(new SendWorkRequest.RdmaRead(1, List.of(ScatterGatherElement.of(src, 0, 8192)), readable.address(), readable.rkey(), true));
        WorkCompletion wc = next(pair.a().cq());
        assertThat(wc.status()).isEqualTo(WcStatus.LOC_PROT_ERR);
        assertThat(wc.detail()).contains("without LOCAL_WRITE");
    }

    @Test
    void anUnknownLocalKeyIsALocalProtectionError() {
        pair.a().qp().postSend(new SendWorkRequest.RdmaWrite(1, List.of(new ScatterGatherElement(src.address(), 64, src.lkey() + 0x100)),
                target.address(), target.rkey(), true));
        WorkCompletion wc = next(pair.a().cq());
        assertThat(wc.status()).isEqualTo(WcStatus.LOC_PROT_ERR);
        assertThat(wc.detail()).contains(String.format("lkey 0x%x", src.lkey() + 0x100));
        TestFabric.awaitState(pair.a().qp(), QpState.ERROR);
    }

    @Test
    void aLocalElementOutsideItsRegionIsALocalProtectionError() {
        pair.a().qp().postSend(new SendWorkRequest.RdmaWrite(1, List.of(new ScatterGatherElement(src.address() + src.length() - 10, 64, src.lkey())),
                target.address(), target.rkey(), true));
        WorkCompletion wc = next(pair.a().cq());
        assertThat(wc.status()).isEqualTo(WcStatus.LOC_PROT_ERR);
        assertThat(wc.detail()).contains("outside the memory region");
    }

    @Test
    void manyWritesInFlightAllLandAndCompleteInOrder() {
        int n = 256;
        MemorySegment big = arena.allocate(1 << 20);
        MemorySegment.copy(src.segment(), 0, big, 0, 1 << 20);
        MemoryRegion local = pair.a().pd().register(big);
        for (int i = 0; i < n; i++) {
            while (true) {
                try {
                    pair.a().qp().postSend(write(i, local, (long) i * 4096, 4096, target.address() + (long) (n - 1 - i) * 4096, target.rkey()));
                    break;
                } catch (VerbsException e) {
                    assertThat(e.reason()).isEqualTo(VerbsException.Reason.QUEUE_FULL);
                    WorkCompletion wc = next(pair.a().cq());
                    assertThat(wc.status()).isEqualTo(WcStatus.SUCCESS);
                    expectOrder(wc);
                }
            }
        }
        while (expected < n) {
            WorkCompletion wc = next(pair.a().cq());
            assertThat(wc.status()).isEqualTo(WcStatus.SUCCESS);
            expectOrder(wc);
        }
        for (int i = 0; i < n; i++) {
            assertThat(targetMemory.segment().asSlice((long) (n - 1 - i) * 4096, 4096).mismatch(big.asSlice((long) i * 4096, 4096))).isEqualTo(-1);
        }
    }

    private long expected;

    private void expectOrder(WorkCompletion wc) {
        assertThat(wc.wrId()).isEqualTo(expected++);
    }
}
