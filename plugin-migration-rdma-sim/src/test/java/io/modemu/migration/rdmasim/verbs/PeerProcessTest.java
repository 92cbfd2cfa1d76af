package io.modemu.migration.rdmasim.verbs;

import static io.modemu.migration.rdmasim.verbs.TestFabric.next;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The fabric between two real processes: data crosses, and a peer killed with SIGKILL fails everything cleanly. */
class PeerProcessTest {
    @RegisterExtension
    final TestFabric fabric = new TestFabric();
    private final Arena arena = fabric.arena();
    private final List<Process> children = new ArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (Process p : children) {
            p.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        }
    }

    /** A child JVM running {@link PeerMain}; its stdout is the protocol. */
    private record Child(Process process, BufferedReader out) {
        String expect(String prefix) throws IOException {
            String line;
            while ((line = out.readLine()) != null) {
                if (line.startsWith(prefix)) {
                    return line.substring(prefix.length()).trim();
                }
                if (line.startsWith("FAILED")) {
                    throw new AssertionError("peer process: " + line);
                }
            }
            throw new AssertionError("peer process ended before printing " + prefix);
        }
    }

    private Child start(String... args) throws IOException {
        Set<String> cp = new LinkedHashSet<>();
        for (String prop : new String[] {"jdk.module.path", "java.class.path"}) {
            String v = System.getProperty(prop);
            if (v != null && !v.isBlank()) {
                cp.addAll(List.of(v.split(File.pathSeparator)));
            }
        }
        String build = System.getProperty("modemu.build.dir", "target");
        cp.add(Path.of(build, "test-classes").toString());
        cp.add(Path.of(build, "classes").toString());
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx256m",
                "-cp", String.join(File.pathSeparator, cp), PeerMain.class.getName()));
        cmd.addAll(List.of(args));
        Path log = Path.of(build, "peer-" + args[0] + "-" + System.nanoTime() + ".log");
        Process p = new ProcessBuilder(cmd).redirectError(log.toFile()).start();
        children.add(p);
        return new Child(p, new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)));
    }

    private static void kill(Child c) throws InterruptedException {
        c.process().destroyForcibly();
        assertThat(c.process().waitFor(30, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void anRdmaWriteLandsInTheOtherProcessMemory() throws Exception {
        Child child = start("target", fabric.dir.toString());
        int port = Integer.parseInt(child.expect("PORT "));
        RdmaDevice d = fabric.device();
        ProtectionDomain pd = d.allocateProtectionDomain();
        CompletionQueue cq = d.createCompletionQueue(64);
        QueuePair qp = pd.createQueuePair(QueuePairConfig.of(cq, 16, 16));
        Connection c = d.connect(new InetSocketAddress("127.0.0.1", port), qp, ConnectionParameters.defaults(), TestFabric.WAIT);
        ByteBuffer info = ByteBuffer.wrap(c.peerPrivateData());
        int rkey = info.getInt();
        long address = info.getLong();
        long length = info.getLong();
        assertThat(length).isEqualTo(4 << 20);
        MemorySegment data = arena.allocate(length);
        byte[] random = new byte[(int) length];
        new Random(7).nextBytes(random);
        MemorySegment.copy(MemorySegment.ofArray(random), 0, data, 0, length);
        MemoryRegion mr = pd.register(data);
        for (int i = 0; i < 4; i++) {
            qp.postSend(new SendWorkRequest.RdmaWrite(i, List.of(ScatterGatherElement.of(mr, i * (1L << 20), 1 << 20)), address + i * (1L << 20), rkey, false));
        }
        qp.postSend(new SendWorkRequest.Send(9, List.of(ScatterGatherElement.of(mr, 0, 8)), true));
        assertThat(next(cq).status()).isEqualTo(WcStatus.SUCCESS);
        CRC32 crc = new CRC32();
        crc.update(random);
        assertThat(child.expect("CRC ")).isEqualTo(Long.toHexString(crc.getValue()));
        child.process().getOutputStream().close();
        assertThat(child.process().waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(c.disconnected().toCompletableFuture().get(30, TimeUnit.SECONDS)).contains("destroyed");
    }

    @Test
    void aPeerKilledWithOutstandingRequestsFailsThemAndFlushesTheReceives() throws Exception {
        Child child = start("sink", fabric.dir.toString());
        int port = Integer.parseInt(child.expect("PORT "));
        RdmaDevice d = fabric.device();
        ProtectionDomain pd = d.allocateProtectionDomain();
        CompletionQueue cq = d.createCompletionQueue(64);
        QueuePair qp = pd.createQueuePair(QueuePairConfig.of(cq, 16, 16));
        Connection c = d.connect(new InetSocketAddress("127.0.0.1", port), qp, ConnectionParameters.defaults(), TestFabric.WAIT);
        child.expect("READY");
        MemoryRegion buf = pd.register(arena.allocate(4096), Access.LOCAL_WRITE);
        for (int i = 0; i < 2; i++) {
            qp.postRecv(ReceiveWorkRequest.of(100 + i, ScatterGatherElement.of(buf, 0, 64)));
        }
        // the sink posts no receive: the messages stay outstanding, the write waits behind them
        qp.postSend(new SendWorkRequest.Send(1, List.of(ScatterGatherElement.of(buf, 0, 64)), true));
        qp.postSend(new SendWorkRequest.Send(2, List.of(ScatterGatherElement.of(buf, 0, 64)), true));
        qp.postSend(new SendWorkRequest.RdmaWrite(3, List.of(ScatterGatherElement.of(buf, 0, 64)), 0x1000, 0x100, true));
        awaitRnrWaiting(qp, 2);
        kill(child);
        List<WorkCompletion> wcs = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            wcs.add(next(cq));
        }
        assertThat(wcs).extracting(WorkCompletion::wrId).containsExactlyInAnyOrder(1L, 2L, 3L, 100L, 101L);
        List<WorkCompletion> sends = wcs.stream().filter(w -> w.wrId() < 100).toList();
        assertThat(sends).extracting(WorkCompletion::wrId).containsExactly(1L, 2L, 3L);
        assertThat(sends.get(0).status()).isEqualTo(WcStatus.RETRY_EXC_ERR);
        assertThat(sends.get(0).detail()).contains("closed the connection");
        assertThat(sends.get(1).status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
        assertThat(sends.get(2).status()).isEqualTo(WcStatus.WR_FLUSH_ERR);
        assertThat(wcs.stream().filter(w -> w.wrId() >= 100)).allMatch(w -> w.status() == WcStatus.WR_FLUSH_ERR);
        assertThat(qp.state()).isEqualTo(QpState.ERROR);
        assertThat(c.disconnected().toCompletableFuture().get(30, TimeUnit.SECONDS)).contains("closed the connection");
        qp.postSend(new SendWorkRequest.Send(4, List.of(ScatterGatherElement.of(buf, 0, 8)), true));
        assertThat(next(cq).status()).as("posting after the death flushes at once").isEqualTo(WcStatus.WR_FLUSH_ERR);
    }

    private static void awaitRnrWaiting(QueuePair qp, int n) throws InterruptedException {
        long deadline = System.nanoTime() + TestFabric.WAIT.toNanos();
        while (true) {
            qp.lock.lock();
            try {
                if (qp.awaitingAck.stream().filter(w -> w.rnrWaiting).count() == n) {
                    return;
                }
            } finally {
                qp.lock.unlock();
            }
            assertThat(System.nanoTime()).as("the peer holds the messages").isLessThan(deadline);
            Thread.sleep(2);
        }
    }

    @Test
    void aPeerKilledWhileWritingIntoOurMemoryLeavesUsAbleToDeregisterAndCleanUp() throws Exception {
        RdmaDevice d = fabric.device(fabric.settings());
        ProtectionDomain pd = d.allocateProtectionDomain();
        CompletionQueue cq = d.createCompletionQueue(64);
        QueuePair qp = pd.createQueuePair(QueuePairConfig.of(cq, 16, 16));
        SharedMemory sm = d.allocateShared(16 << 20);
        MemoryRegion region = pd.register(sm.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        byte[] pdata = ByteBuffer.allocate(20).putInt(region.rkey()).putLong(region.address()).putLong(region.length()).array();
        Child child;
        Connection c;
        try (ConnectionListener l = d.listen(new InetSocketAddress("127.0.0.1", 0))) {
            child = start("flood", fabric.dir.toString(), Integer.toString(l.localAddress().getPort()));
            c = l.accept(TestFabric.WAIT).accept(qp, ConnectionParameters.withPrivateData(pdata));
        }
        child.expect("READY");
        long deadline = System.nanoTime() + TestFabric.WAIT.toNanos();
        while (sm.segment().get(ValueLayout.JAVA_BYTE, (1 << 20) - 1) != 0x77) {
            assertThat(System.nanoTime()).as("the peer's writes arrive").isLessThan(deadline);
            Thread.sleep(1);
        }
        kill(child);
        assertThat(c.disconnected().toCompletableFuture().get(30, TimeUnit.SECONDS)).contains("closed the connection");
        TestFabric.awaitState(qp, QpState.ERROR);
        region.deregister();
        sm.close();
        qp.close();
        assertThat(Files.exists(sm.file())).isFalse();
    }

    @Test
    void filesLeftByAKilledProcessAreRemovedByTheNextDevice() throws Exception {
        Child child = start("sink", fabric.dir.toString());
        child.expect("PORT ");
        long pid = child.process().pid();
        kill(child);
        try (var files = Files.list(fabric.dir)) {
            assertThat(files.map(f -> f.getFileName().toString()).filter(n -> n.startsWith(RdmaDevice.FILE_PREFIX + pid + "-")).count())
                    .as("SIGKILL leaves the table behind").isEqualTo(1);
        }
        fabric.device();
        try (var files = Files.list(fabric.dir)) {
            assertThat(files.map(f -> f.getFileName().toString()).filter(n -> n.startsWith(RdmaDevice.FILE_PREFIX + pid + "-")).count()).isZero();
        }
    }
}
