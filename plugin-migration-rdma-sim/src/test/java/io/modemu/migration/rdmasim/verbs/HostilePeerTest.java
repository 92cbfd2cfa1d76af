package io.modemu.migration.rdmasim.verbs;

import static io.modemu.migration.rdmasim.verbs.TestFabric.next;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Peers that shake hands correctly and then misbehave on the wire: every case ends with the victim's
 * queue pair in ERROR and a reason naming the peer, never with a crash or a hang.
 */
class HostilePeerTest {
    @RegisterExtension
    final TestFabric fabric = new TestFabric();
    private final Arena arena = fabric.arena();
    private RdmaDevice victim;
    private QueuePair qp;
    private CompletionQueue cq;
    private RdmaDevice impostor;
    private QueuePair impostorQp;

    @BeforeEach
    void setUp() {
        victim = fabric.device();
        cq = victim.createCompletionQueue(64);
        qp = victim.allocateProtectionDomain().createQueuePair(QueuePairConfig.of(cq, 16, 16));
        // the impostor has a real table (so the victim can map it) but plays the wire by hand
        impostor = fabric.device();
        impostorQp = impostor.allocateProtectionDomain().createQueuePair(QueuePairConfig.of(impostor.createCompletionQueue(4), 4, 4));
        impostor.publishQueuePair(impostorQp, QpState.RTS);
    }

    /** The impostor connects to the victim's listener and completes the handshake; returns its raw socket. */
    private SocketChannel impostorConnects(ConnectionParameters victimParams) throws IOException {
        try (ConnectionListener l = victim.listen(TestFabric.loopback())) {
            CompletableFuture<Connection> accepted = CompletableFuture.supplyAsync(() -> {
                try {
                    return l.accept(TestFabric.WAIT).accept(qp, victimParams);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            SocketChannel ch = SocketChannel.open(l.localAddress());
            CmMessage.write(ch, CmMessage.endpoint(CmMessage.REQ, impostor.endpoint(impostorQp, ConnectionParameters.defaults())));
            CmMessage.Received rep = CmMessage.read(new DataInputStream(ch.socket().getInputStream()), "victim");
            assertThat(rep.kind()).isEqualTo(CmMessage.REP);
            CmMessage.write(ch, CmMessage.rtu());
            accepted.join();
            return ch;
        }
    }

    /** The victim connects to the impostor's socket, which completes the handshake and then says nothing. */
    private SocketChannel victimConnectsToSilentImpostor(ConnectionParameters victimParams) throws Exception {
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress("127.0.0.1", 0));
            CompletableFuture<SocketChannel> impostorSide = CompletableFuture.supplyAsync(() -> {
                try {
                    SocketChannel ch = server.accept();
                    CmMessage.Received req = CmMessage.read(new DataInputStream(ch.socket().getInputStream()), "victim");
                    assertThat(req.kind()).isEqualTo(CmMessage.REQ);
                    CmMessage.write(ch, CmMessage.endpoint(CmMessage.REP, impostor.endpoint(impostorQp, ConnectionParameters.defaults())));
                    CmMessage.read(new DataInputStream(ch.socket().getInputStream()), "victim");
                    return ch;
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            victim.connect((InetSocketAddress) server.getLocalAddress(), qp, victimParams, TestFabric.WAIT);
            return impostorSide.join();
        }
    }

    private static void send(SocketChannel ch, byte[] frame) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(frame);
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private String awaitError() {
        TestFabric.awaitState(qp, QpState.ERROR);
        return qp.errorReason();
    }

    @Test
    void anUnknownFrameTypeTakesTheQueuePairDownNamingThePeer() throws Exception {
        try (SocketChannel ch = impostorConnects(ConnectionParameters.defaults())) {
            send(ch, Frame.encode(99, 0, 0, 0, 0, 0, null));
            assertThat(awaitError()).contains("broke the protocol").contains("frame type 99").contains(String.format("peer QP 0x%x", impostorQp.number()));
        }
    }

    @Test
    void anAcknowledgementForNothingIsAProtocolViolation() throws Exception {
        try (SocketChannel ch = impostorConnects(ConnectionParameters.defaults())) {
            send(ch, Frame.ack(42));
            assertThat(awaitError()).contains("acknowledgement for PSN 42").contains("none");
        }
    }

    @Test
    void anOversizedErrorNoticeIsAProtocolViolation() throws Exception {
        try (SocketChannel ch = impostorConnects(ConnectionParameters.defaults())) {
            send(ch, Frame.encode(Frame.QP_DOWN, 0, 0, 0, 0, 1L << 40, null));
            assertThat(awaitError()).contains("error notice carries 1099511627776 bytes");
        }
    }

    @Test
    void aMessageLongerThanTheMaximumWithNoReceivePostedIsRefusedWithoutBufferingIt() throws Exception {
        try (SocketChannel ch = impostorConnects(ConnectionParameters.defaults())) {
            send(ch, Frame.message(Frame.OP_SEND, 1, 0, 1L << 40, null));
            assertThat(awaitError()).contains("1099511627776 bytes is longer than the maximum message size");
        }
    }

    @Test
    void aPeerThatKeepsSendingWithNoReceivePostedIsRefusedOnceTheVictimHoldsItsLimit() throws Exception {
        // the impostor announced rnr_retry 7 (wait forever), so only the victim's limit on what it holds stops it
        int size = victim.settings().maxMessageSize();
        long limit = Responder.heldLimit(size);
        int fit = (int) (limit / (size + Responder.HELD_OVERHEAD));
        byte[] body = new byte[size];
        try (SocketChannel ch = impostorConnects(ConnectionParameters.defaults())) {
            for (int psn = 1; psn <= fit + 2; psn++) {
                send(ch, Frame.encode(Frame.MSG, Frame.OP_SEND, 0, psn, 0, size, null));
                send(ch, body);
            }
            ByteBuffer scratch = ByteBuffer.allocate(Frame.HEADER);
            for (int psn = 1; psn <= fit; psn++) {
                Frame f = Frame.readHeader(ch, scratch);
                assertThat(f.type).as("answer to PSN %d", psn).isEqualTo(Frame.RNR_WAIT);
                assertThat(f.psn).isEqualTo(psn);
            }
            Frame nak = Frame.readHeader(ch, scratch);
            assertThat(nak.type).isEqualTo(Frame.NAK);
            // refused at the oldest message waiting, as if the impostor's RNR retries had run out
            assertThat(nak.psn).isEqualTo(1);
            assertThat(WcStatus.fromCode(nak.code)).isEqualTo(WcStatus.RNR_RETRY_EXC_ERR);
            assertThat(nak.readDetail(ch)).contains("had no receive posted for SEND PSN 1")
                    .contains("holds " + fit + " messages").contains("PSN " + (fit + 1)).contains(String.format("peer QP 0x%x", impostorQp.number()));
            // what it held is dropped, and so is what comes after: nothing is placed into a receive posted now
            MemoryRegion in = qp.protectionDomain().register(arena.allocate(4096), Access.LOCAL_WRITE);
            qp.postRecv(ReceiveWorkRequest.of(7, ScatterGatherElement.of(in)));
            assertThat(cq.poll()).isNull();
        }
        assertThat(awaitError()).contains("closed the connection");
        assertThat(next(cq).status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
    }

    @Test
    void aReceiveBeingFilledWhenTheQueuePairFailsCompletesOnlyOnceItsBufferIsNoLongerWritten() throws Exception {
        MemoryRegion in = qp.protectionDomain().register(arena.allocate(1 << 20), Access.LOCAL_WRITE);
        try (SocketChannel ch = impostorConnects(ConnectionParameters.defaults())) {
            qp.postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(in)));
            // a message of 1 MiB of which only the start arrives: the receive thread is writing into the buffer
            send(ch, Frame.message(Frame.OP_SEND, 1, 0, 1 << 20, new byte[1000]));
            long deadline = System.nanoTime() + TestFabric.WAIT.toNanos();
            while (!placing()) {
                assertThat(System.nanoTime()).as("the receive thread never started filling the receive").isLessThan(deadline);
                Thread.sleep(1);
            }
            qp.modify(QpState.ERROR);
            // the link goes down and the receive thread stops filling; only then may the owner get the buffer back
            WorkCompletion wc = next(cq);
            assertThat(placing()).as("the receive completed while its buffer was still being written").isFalse();
            assertThat(wc.wrId()).isEqualTo(1);
            assertThat(wc.status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
        }
    }

    private boolean placing() {
        qp.lock.lock();
        try {
            return qp.placing != null;
        } finally {
            qp.lock.unlock();
        }
    }

    @Test
    void aMessageTruncatedByTheDeathOfThePeerFailsTheReceiveCleanly() throws Exception {
        MemoryRegion in = qp.protectionDomain().register(arena.allocate(4096), Access.LOCAL_WRITE);
        try (SocketChannel ch = impostorConnects(ConnectionParameters.defaults())) {
            qp.postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(in)));
            byte[] head = Frame.message(Frame.OP_SEND, 1, 0, 4096, new byte[100]);
            send(ch, head);
        }
        assertThat(awaitError()).contains("closed the connection");
        WorkCompletion wc = next(cq);
        assertThat(wc.wrId()).isEqualTo(1);
        assertThat(wc.status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
    }

    @Test
    void aPeerThatNeverAcknowledgesFailsTheMessageWithRetryExceeded() throws Exception {
        ConnectionParameters impatient = ConnectionParameters.defaults().retry(1, Duration.ofMillis(20));
        try (SocketChannel silent = victimConnectsToSilentImpostor(impatient)) {
            MemoryRegion out = qp.protectionDomain().register(arena.allocate(64));
            qp.postSend(new SendWorkRequest.Send(1, List.of(ScatterGatherElement.of(out)), true));
            WorkCompletion wc = next(cq);
            assertThat(wc.status()).isEqualTo(WcStatus.RETRY_EXC_ERR);
            assertThat(wc.detail()).contains("did not acknowledge SEND wr_id 1").contains("retry_cnt 1");
            assertThat(silent.isOpen()).isTrue();
        }
    }

    @Test
    void aLyingRemoteKeyTableCannotMakeTheRequesterTouchMemoryOutsideTheFile() throws Exception {
        // the victim writes into the impostor's table-described region, whose entry the impostor corrupts
        try (SocketChannel silent = victimConnectsToSilentImpostor(ConnectionParameters.defaults())) {
            SharedMemory sm = impostor.allocateShared(4096);
            MemoryRegion target = impostorQp.protectionDomain().register(sm.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
            // the impostor claims the region is 1 TiB long
            impostorTable().publishMr(target.rkey() >>> 8, target.rkey(), Access.bits(target.access()), impostorQp.protectionDomain().id(),
                    sm.index(), sm.generation(), 0, target.address(), 1L << 40);
            MemoryRegion out = qp.protectionDomain().register(arena.allocate(1 << 16));
            qp.postSend(new SendWorkRequest.RdmaWrite(1, List.of(ScatterGatherElement.of(out)), target.address() + (1L << 30), target.rkey(), true));
            WorkCompletion wc = next(cq);
            assertThat(wc.status()).isEqualTo(WcStatus.REM_ACCESS_ERR);
            assertThat(wc.detail()).contains("outside the file");
        }
    }

    @Test
    void aPeerThatShrinksItsFileUnderTheMappingFailsTheWriteNotTheProcess() throws Exception {
        // the victim copies into its own mapping of the impostor's file; the impostor then cuts the file short
        try (SocketChannel silent = victimConnectsToSilentImpostor(ConnectionParameters.defaults())) {
            SharedMemory sm = impostor.allocateShared(1 << 20);
            MemoryRegion target = impostorQp.protectionDomain().register(sm.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
            MemoryRegion out = qp.protectionDomain().register(arena.allocate(1 << 16));
            out.segment().fill((byte) 7);
            qp.postSend(new SendWorkRequest.RdmaWrite(1, List.of(ScatterGatherElement.of(out)), target.address(), target.rkey(), true));
            assertThat(next(cq).status()).isEqualTo(WcStatus.SUCCESS);
            assertThat(sm.segment().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 65535)).isEqualTo((byte) 7);
            try (FileChannel ch = FileChannel.open(sm.file(), StandardOpenOption.WRITE)) {
                ch.truncate(4096);
            }
            qp.postSend(new SendWorkRequest.RdmaWrite(2, List.of(ScatterGatherElement.of(out)), target.address() + 8192, target.rkey(), true));
            WorkCompletion wc = next(cq);
            assertThat(wc.status()).isEqualTo(WcStatus.REM_ACCESS_ERR);
            assertThat(wc.detail()).contains("rkey").contains("faulted");
            assertThat(qp.state()).isEqualTo(QpState.ERROR);
        }
    }

    private SharedTable impostorTable() {
        return impostor.table();
    }
}
