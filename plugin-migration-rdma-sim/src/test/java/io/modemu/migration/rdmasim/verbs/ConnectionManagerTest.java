package io.modemu.migration.rdmasim.verbs;

import static io.modemu.migration.rdmasim.verbs.TestFabric.next;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class ConnectionManagerTest {
    @RegisterExtension
    final TestFabric fabric = new TestFabric();
    private final Arena arena = fabric.arena();

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static QueuePair queuePair(RdmaDevice d) {
        return d.allocateProtectionDomain().createQueuePair(QueuePairConfig.of(d.createCompletionQueue(64), 16, 16));
    }

    @Test
    void privateDataTravelsBothWays() {
        TestFabric.Pair p = fabric.connect(ConnectionParameters.withPrivateData(bytes("hello from A")),
                ConnectionParameters.withPrivateData(bytes("welcome, says B")), 8);
        assertThat(new String(p.a().connection().peerPrivateData(), StandardCharsets.UTF_8)).isEqualTo("welcome, says B");
        assertThat(new String(p.b().connection().peerPrivateData(), StandardCharsets.UTF_8)).isEqualTo("hello from A");
        assertThat(p.a().connection().peerQueuePairNumber()).isEqualTo(p.b().qp().number());
    }

    @Test
    void aRejectionCarriesTheListenersPrivateDataAndLeavesTheQueuePairUsable() throws Exception {
        RdmaDevice a = fabric.device();
        RdmaDevice b = fabric.device();
        QueuePair qp = queuePair(a);
        try (ConnectionListener l = b.listen(TestFabric.loopback())) {
            CompletableFuture<byte[]> seen = CompletableFuture.supplyAsync(() -> {
                try {
                    ConnectRequest r = l.accept(TestFabric.WAIT);
                    byte[] data = r.privateData();
                    r.reject(bytes("busy"));
                    return data;
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            assertThatThrownBy(() -> a.connect(l.localAddress(), qp, ConnectionParameters.withPrivateData(bytes("may I?")), TestFabric.WAIT))
                    .isInstanceOf(ConnectionRejectedException.class).hasMessageContaining("rejected")
                    .satisfies(e -> assertThat(((ConnectionRejectedException) e).privateData()).isEqualTo(bytes("busy")));
            assertThat(seen.join()).isEqualTo(bytes("may I?"));
        }
        assertThat(qp.state()).isEqualTo(QpState.INIT);
    }

    @Test
    void privateDataBeyondRdmaCmLimitsIsRefused() throws Exception {
        RdmaDevice a = fabric.device();
        QueuePair qp = queuePair(a);
        InetSocketAddress nowhere = new InetSocketAddress("127.0.0.1", 1);
        assertThatThrownBy(() -> a.connect(nowhere, qp, ConnectionParameters.withPrivateData(new byte[57]), TestFabric.WAIT))
                .hasMessageContaining("57 bytes of private data, at most 56");
    }

    @Test
    void connectingToNothingNamesTheAddress() throws Exception {
        int port;
        try (ServerSocketChannel s = ServerSocketChannel.open()) {
            s.bind(new InetSocketAddress("127.0.0.1", 0));
            port = ((InetSocketAddress) s.getLocalAddress()).getPort();
        }
        RdmaDevice a = fabric.device();
        assertThatThrownBy(() -> a.connect(new InetSocketAddress("127.0.0.1", port), queuePair(a), ConnectionParameters.defaults(), TestFabric.WAIT))
                .isInstanceOf(IOException.class).hasMessageContaining("cannot reach 127.0.0.1:" + port);
    }

    @Test
    void aClientSendingGarbageIsRefusedAndTheListenerKeepsListening() throws Exception {
        RdmaDevice b = fabric.device();
        try (ConnectionListener l = b.listen(TestFabric.loopback())) {
            CompletableFuture<ConnectRequest> next = CompletableFuture.supplyAsync(() -> {
                try {
                    return l.accept(TestFabric.WAIT);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            try (SocketChannel junk = SocketChannel.open(l.localAddress())) {
                junk.write(ByteBuffer.wrap(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
                ByteBuffer reply = ByteBuffer.allocate(4096);
                try {
                    while (junk.read(reply) >= 0) {
                        // read the rejection until the listener closes
                    }
                } catch (java.net.SocketException reset) {
                    // the listener closed with our junk unread: a reset
                }
            }
            RdmaDevice a = fabric.device();
            QueuePair qpB = queuePair(b);
            CompletableFuture<Connection> accepted = next.thenApply(r -> {
                try {
                    return r.accept(qpB, ConnectionParameters.defaults());
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            Connection c = a.connect(l.localAddress(), queuePair(a), ConnectionParameters.defaults(), TestFabric.WAIT);
            assertThat(c.isConnected()).isTrue();
            assertThat(accepted.join().isConnected()).isTrue();
        }
    }

    @Test
    void aMessageSentTheMomentTheConnectReturnsIsDelivered() throws Exception {
        // the accepting side is in RTR before it answers, so the connector may send at once
        RdmaDevice a = fabric.device();
        RdmaDevice b = fabric.device();
        for (int i = 0; i < 20; i++) {
            QueuePair qpA = queuePair(a);
            QueuePair qpB = queuePair(b);
            MemoryRegion out = qpA.protectionDomain().register(arena.allocate(8));
            MemoryRegion in = qpB.protectionDomain().register(arena.allocate(8), Access.LOCAL_WRITE);
            qpB.modify(QpState.INIT);
            qpB.postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(in)));
            try (ConnectionListener l = b.listen(TestFabric.loopback())) {
                CompletableFuture<Connection> accepted = CompletableFuture.supplyAsync(() -> {
                    try {
                        return l.accept(TestFabric.WAIT).accept(qpB, ConnectionParameters.defaults());
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
                Connection c = a.connect(l.localAddress(), qpA, ConnectionParameters.defaults(), TestFabric.WAIT);
                qpA.postSend(new SendWorkRequest.Send(2, List.of(ScatterGatherElement.of(out)), true));
                assertThat(next(qpA.config().sendCq()).status()).isEqualTo(WcStatus.SUCCESS);
                assertThat(next(qpB.config().recvCq()).status()).isEqualTo(WcStatus.SUCCESS);
                c.disconnect();
                accepted.join().disconnect();
            }
            qpA.close();
            qpB.close();
        }
    }

    @Test
    void disconnectTakesBothEndsDownAndFlushesTheirReceives() {
        TestFabric.Pair p = fabric.connect();
        MemoryRegion in = p.b().pd().register(arena.allocate(64), Access.LOCAL_WRITE);
        MemoryRegion inA = p.a().pd().register(arena.allocate(64), Access.LOCAL_WRITE);
        p.b().qp().postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(in)));
        p.a().qp().postRecv(ReceiveWorkRequest.of(2, ScatterGatherElement.of(inA)));
        p.a().connection().disconnect();
        assertThat(p.b().connection().disconnected().toCompletableFuture().join()).contains("disconnected");
        assertThat(p.a().connection().disconnected().toCompletableFuture().join()).contains("disconnected locally");
        TestFabric.awaitState(p.b().qp(), QpState.ERROR);
        assertThat(p.a().qp().state()).isEqualTo(QpState.ERROR);
        assertThat(next(p.a().cq()).status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
        assertThat(next(p.b().cq()).status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
    }

    @Test
    void aQueuePairResetAfterAnErrorCanBeConnectedAgain() {
        TestFabric.Pair p = fabric.connect();
        p.a().connection().disconnect();
        p.a().qp().modify(QpState.RESET);
        p.b().qp().modify(QpState.RESET);
        TestFabric.Pair again = fabric.connect(p.a().device(), p.b().device(), ConnectionParameters.defaults(), ConnectionParameters.defaults(), 8);
        MemoryRegion out = again.a().pd().register(arena.allocate(8));
        MemoryRegion in = again.b().pd().register(arena.allocate(8), Access.LOCAL_WRITE);
        again.b().qp().postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(in)));
        again.a().qp().postSend(new SendWorkRequest.Send(2, List.of(ScatterGatherElement.of(out)), true));
        assertThat(next(again.b().cq()).status()).isEqualTo(WcStatus.SUCCESS);
    }

    @Test
    void cuttingTheLinkFailsTheFirstOutstandingRequestOnBothEndsWithRetryExceeded() throws Exception {
        TestFabric.Pair p = fabric.connect();
        MemoryRegion outA = p.a().pd().register(arena.allocate(64));
        MemoryRegion outB = p.b().pd().register(arena.allocate(64));
        // each sends a message the other has no receive for: both stay outstanding (receiver not ready)
        p.a().qp().postSend(new SendWorkRequest.Send(1, List.of(ScatterGatherElement.of(outA)), true));
        p.a().qp().postSend(new SendWorkRequest.Send(2, List.of(ScatterGatherElement.of(outA)), true));
        p.b().qp().postSend(new SendWorkRequest.Send(3, List.of(ScatterGatherElement.of(outB)), true));
        awaitHeld(p.b().qp(), 2);
        awaitHeld(p.a().qp(), 1);
        p.a().connection().cutLink();
        WorkCompletion a1 = next(p.a().cq());
        WorkCompletion a2 = next(p.a().cq());
        WorkCompletion b3 = next(p.b().cq());
        assertThat(a1.wrId()).isEqualTo(1);
        assertThat(a1.status()).isEqualTo(WcStatus.RETRY_EXC_ERR);
        assertThat(a1.detail()).contains("was cut");
        assertThat(a2.status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
        assertThat(b3.status()).isEqualTo(WcStatus.RETRY_EXC_ERR);
        // EOF, or a reset when the cut left unread data behind: either way the peer is gone
        assertThat(b3.detail()).containsAnyOf("closed the connection", "lost the connection");
        assertThat(p.a().qp().state()).isEqualTo(QpState.ERROR);
        TestFabric.awaitState(p.b().qp(), QpState.ERROR);
    }

    static void awaitHeld(QueuePair qp, int messages) throws InterruptedException {
        long deadline = System.nanoTime() + TestFabric.WAIT.toNanos();
        while (true) {
            qp.lock.lock();
            try {
                if (qp.backlog.size() == messages) {
                    return;
                }
            } finally {
                qp.lock.unlock();
            }
            assertThat(System.nanoTime()).as(qp + " holds " + messages + " messages").isLessThan(deadline);
            Thread.sleep(2);
        }
    }

    @Test
    void aPeerUsingAnotherSharedMemoryDirectoryIsRefusedClearly() throws Exception {
        Path other = Files.createTempDirectory(fabric.dir.getParent(), "rdmasim-other-");
        try {
            RdmaDevice a = fabric.device(fabric.settings().withShmDirectory(other));
            RdmaDevice b = fabric.device();
            QueuePair qpB = queuePair(b);
            try (ConnectionListener l = b.listen(TestFabric.loopback())) {
                CompletableFuture<Void> accepting = CompletableFuture.runAsync(() -> {
                    try {
                        l.accept(TestFabric.WAIT).accept(qpB, ConnectionParameters.defaults());
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
                assertThatThrownBy(() -> a.connect(l.localAddress(), queuePair(a), ConnectionParameters.defaults(), TestFabric.WAIT))
                        .isInstanceOf(ConnectionRejectedException.class).hasMessageContaining("outside this device's shared memory directory");
                assertThatThrownBy(accepting::join).hasMessageContaining("outside this device's shared memory directory");
            }
            a.close();
        } finally {
            try (var files = Files.list(other)) {
                for (Path f : files.toList()) {
                    Files.deleteIfExists(f);
                }
            }
            Files.deleteIfExists(other);
        }
    }

    @Test
    void closingADeviceDisconnectsItsPeersAndRemovesItsFiles() throws Exception {
        TestFabric.Pair p = fabric.connect();
        SharedMemory sm = p.a().device().allocateShared(4096);
        MemoryRegion in = p.b().pd().register(arena.allocate(64), Access.LOCAL_WRITE);
        p.b().qp().postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(in)));
        p.a().device().close();
        assertThat(p.b().connection().disconnected().toCompletableFuture().join()).contains("destroyed");
        assertThat(next(p.b().cq()).status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
        assertThat(Files.exists(sm.file())).isFalse();
        try (var files = Files.list(fabric.dir)) {
            assertThat(files.map(f -> f.getFileName().toString()).filter(n -> n.contains(Long.toString(ProcessHandle.current().pid()))).count())
                    .as("only device B's table is left").isEqualTo(1);
        }
    }
}
