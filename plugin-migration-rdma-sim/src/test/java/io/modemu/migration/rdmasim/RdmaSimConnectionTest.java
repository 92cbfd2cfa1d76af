package io.modemu.migration.rdmasim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.machine.RamBlock;
import io.modemu.migration.rdmasim.verbs.ConnectionParameters;
import io.modemu.migration.rdmasim.verbs.ConnectionRejectedException;
import io.modemu.migration.rdmasim.verbs.QueuePairConfig;
import io.modemu.migration.rdmasim.verbs.RdmaDevice;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RdmaSimConnectionTest {
    private static final Duration WAIT = Duration.ofSeconds(30);

    private Path dir;
    private Arena arena;
    private final List<AutoCloseable> closeables = new ArrayList<>();

    @BeforeEach
    void setUp() throws IOException {
        dir = Files.createTempDirectory(Path.of("/dev/shm"), "rdmasim-transport-");
        arena = Arena.ofShared();
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) {
            closeables.get(i).close();
        }
        arena.close();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.deleteIfExists(f);
            }
        }
        Files.deleteIfExists(dir);
    }

    private record Pair(RdmaSimConnection source, RdmaSimConnection destination) {
    }

    private Pair connect(String options, Duration ioTimeout) throws IOException {
        RdmaSimAcceptor acceptor = RdmaSimAcceptor.listen(RdmaSimAddress.parse("127.0.0.1:0,shm=" + dir), ioTimeout);
        closeables.add(acceptor);
        CompletableFuture<RdmaSimConnection> in = CompletableFuture.supplyAsync(() -> {
            try {
                return acceptor.accept(WAIT);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        RdmaSimConnection out = RdmaSimConnection.connect(RdmaSimAddress.parse(acceptor.address() + ",shm=" + dir + options), WAIT, ioTimeout);
        closeables.add(out);
        RdmaSimConnection dst = in.join();
        closeables.add(dst);
        return new Pair(out, dst);
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static byte[] readFully(RdmaSimConnection c, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            int k = c.read(b, WAIT);
            assertThat(k).as("end of stream after %d of %d bytes", b.position(), n).isPositive();
        }
        return b.array();
    }

    @Test
    void theStreamCarriesBytesInOrderInBothDirectionsAtOnce() throws Exception {
        Pair p = connect("", WAIT);
        byte[] there = random(5 << 20, 1);
        byte[] back = random(3 << 20, 2);
        CompletableFuture<byte[]> atDestination = CompletableFuture.supplyAsync(() -> {
            try {
                return readFully(p.destination(), there.length);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        CompletableFuture<Void> reply = CompletableFuture.runAsync(() -> {
            try {
                p.destination().write(ByteBuffer.wrap(back));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        // odd-sized pieces and gathering writes
        int pos = 0;
        Random r = new Random(3);
        while (pos < there.length) {
            int a = Math.min(there.length - pos, 1 + r.nextInt(200_000));
            int b = Math.min(there.length - pos - a, r.nextInt(1000));
            p.source().write(ByteBuffer.wrap(there, pos, a), ByteBuffer.wrap(there, pos + a, b));
            pos += a + b;
        }
        assertThat(readFully(p.source(), back.length)).isEqualTo(back);
        assertThat(atDestination.join()).isEqualTo(there);
        reply.join();
    }

    @Test
    void readsEndWithMinusOneOnceThePeerClosed() throws Exception {
        Pair p = connect("", WAIT);
        p.source().write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
        p.source().close();
        ByteBuffer b = ByteBuffer.allocate(10);
        while (b.position() < 3) {
            assertThat(p.destination().read(b, WAIT)).isPositive();
        }
        assertThat(p.destination().read(b, WAIT)).isEqualTo(-1);
        assertThatThrownBy(() -> p.destination().write(ByteBuffer.wrap(new byte[1]))).isInstanceOf(IOException.class).hasMessageContaining("closed");
    }

    @Test
    void aWriterFailsInsteadOfHangingWhenThePeerStopsReading() throws Exception {
        Pair p = connect("", Duration.ofMillis(300));
        byte[] lots = new byte[16 << 20];
        assertThatThrownBy(() -> p.source().write(ByteBuffer.wrap(lots))).isInstanceOf(SocketTimeoutException.class)
                .hasMessageContaining("took no data for 300 ms");
    }

    @Test
    void aReadWithATimeoutFailsWhenNothingComes() throws Exception {
        Pair p = connect("", WAIT);
        assertThatThrownBy(() -> p.destination().read(ByteBuffer.allocate(1), Duration.ofMillis(20))).isInstanceOf(SocketTimeoutException.class)
                .hasMessageContaining("nothing from");
    }

    @Test
    void cuttingTheLinkFailsBothEndsWithAReason() throws Exception {
        Pair p = connect("", WAIT);
        p.source().cutLink();
        assertThatThrownBy(() -> p.destination().read(ByteBuffer.allocate(1), WAIT)).isInstanceOf(IOException.class)
                .satisfies(e -> assertThat(e.getMessage()).containsAnyOf("closed the connection", "lost the connection"));
        assertThatThrownBy(() -> p.source().read(ByteBuffer.allocate(1), WAIT)).isInstanceOf(IOException.class).hasMessageContaining("was cut");
    }

    /** Source RAM (anonymous memory) and destination RAM (a shared file mapping) of the same shape. */
    private record Ram(List<RamBlock> source, List<RamBlock> destination) {
    }

    private int files;

    private Ram ram(long... sizes) throws IOException {
        List<RamBlock> src = new ArrayList<>();
        List<RamBlock> dst = new ArrayList<>();
        for (int i = 0; i < sizes.length; i++) {
            MemorySegment s = arena.allocate(sizes[i], 4096);
            MemorySegment.copy(MemorySegment.ofArray(random((int) sizes[i], 10 + i)), 0, s, 0, sizes[i]);
            src.add(new RamBlock("ram" + i, 0x8000_0000L * (i + 1), s, null));
            dst.add(RdmaSimFixture.fileBackedRam("ram" + i, 0x8000_0000L * (i + 1), dir.resolve("dest-ram" + i + "-" + (files++)), sizes[i], arena));
        }
        return new Ram(src, dst);
    }

    @ParameterizedTest(name = "pin-all={0}")
    @ValueSource(booleans = {false, true})
    void oneSidedWritesLandInTheDestinationsFileBackedRam(boolean pinAll) throws Exception {
        Pair p = connect(pinAll ? ",pin-all=on" : "", WAIT);
        assertThat(p.destination().pinAll()).isEqualTo(pinAll);
        Ram ram = ram(8L << 20, 3L << 20);
        byte[] token = p.destination().exposeRam(ram.destination());
        p.source().openRam(ram.source(), token);
        // a run that crosses chunk boundaries, single pages, a whole block
        p.source().writeRam(0, (1L << 20) - 4096, (2L << 20) + 8192);
        p.source().writeRam(0, 7L << 20, 4096);
        p.source().writeRam(1, 0, 3L << 20);
        p.source().flushRam();
        MemorySegment s0 = ram.source().get(0).segment();
        MemorySegment d0 = ram.destination().get(0).segment();
        long from = (1L << 20) - 4096;
        long to = from + (2L << 20) + 8192;
        assertThat(d0.asSlice(from, to - from).mismatch(s0.asSlice(from, to - from))).isEqualTo(-1);
        assertThat(d0.asSlice(7L << 20, 4096).mismatch(s0.asSlice(7L << 20, 4096))).isEqualTo(-1);
        assertThat(d0.asSlice(0, from).mismatch(MemorySegment.ofArray(new byte[(int) from]))).as("untouched pages stay zero").isEqualTo(-1);
        assertThat(ram.destination().get(1).segment().mismatch(ram.source().get(1).segment())).isEqualTo(-1);
        if (pinAll) {
            assertThat(p.destination().chunkRegistrations()).isZero();
        } else {
            assertThat(p.destination().chunkRegistrations()).as("registered on demand: the 8 chunks written, and some of the 3 ahead").isBetween(8, 11);
        }
    }

    @Test
    void aBatchOfChunkKeysIsAQuarterOfTheBlockUpTo256() {
        // a block of more than four chunks is asked for in several batches, so that the engine's small
        // warm-up machine (16 MiB) runs the asking-ahead branch that a real migration runs
        assertThat(RamImporter.batchFor(1)).isEqualTo(1);
        assertThat(RamImporter.batchFor(7)).isEqualTo(1);
        assertThat(RamImporter.batchFor(16)).isEqualTo(4);
        assertThat(RamImporter.batchFor(1024)).isEqualTo(256);
        assertThat(RamImporter.batchFor(1 << 20)).isEqualTo(RamImporter.BATCH);
    }

    /** Waits until the destination registered {@code n} chunks (the source asks ahead without waiting for the answer). */
    private static void awaitRegistrations(Pair p, int n) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (p.destination().chunkRegistrations() < n && System.nanoTime() < deadline) {
            Thread.sleep(2);
        }
    }

    @Test
    void chunksAskedForTogetherShareOneRegionAndNothingElseIsExposed() throws Exception {
        Pair p = connect("", WAIT);
        long size = 260L << 20;
        MemorySegment s = arena.allocate(size, 4096);
        List<RamBlock> dst = List.of(RdmaSimFixture.fileBackedRam("ram0", 0x8000_0000L, dir.resolve("dest-big"), size, arena));
        p.source().openRam(List.of(new RamBlock("ram0", 0x8000_0000L, s, null)), p.destination().exposeRam(dst));
        s.asSlice(5L << 20, 4096).fill((byte) 7);
        p.source().writeRam(0, 5L << 20, 4096);
        p.source().flushRam();
        // batches of a quarter of the block's 260 chunks (65): the first write asks for its chunk and the ones
        // after it, 5..69, in one request, and for the next batch, 70..134, in another: two regions of exactly those
        assertThat(RamImporter.batchFor(260)).isEqualTo(65);
        // the request for the next batch is not waited for by the flush: it is asked ahead, and answered when it is
        awaitRegistrations(p, 130);
        assertThat(p.destination().chunkRegistrations()).isEqualTo(130);
        assertThat(p.destination().ramRegions()).containsExactly(2, 130L << 20);
        s.asSlice(2L << 20, 8192).fill((byte) 9);
        p.source().writeRam(0, 2L << 20, 8192);
        p.source().flushRam();
        // chunks 2..4 were asked for next (up to the chunks already registered; the batch after them is asked
        // already): a third region; 0 and 1 stay unexposed
        assertThat(p.destination().chunkRegistrations()).isEqualTo(133);
        assertThat(p.destination().ramRegions()).containsExactly(3, 133L << 20);
        assertThat(dst.getFirst().segment().asSlice(2L << 20, 8192).mismatch(s.asSlice(2L << 20, 8192))).isEqualTo(-1);
        assertThat(dst.getFirst().segment().asSlice(5L << 20, 4096).mismatch(s.asSlice(5L << 20, 4096))).isEqualTo(-1);
        p.destination().withdrawRam();
        assertThat(p.destination().ramRegions()).containsExactly(0, 0);
        p.source().writeRam(0, 6L << 20, 4096);
        assertThatThrownBy(() -> p.source().flushRam()).isInstanceOf(IOException.class).hasMessageContaining("REM_ACCESS_ERR");
    }

    @Test
    void afterTheDestinationWithdrewNoWriteLandsAndTheSourceLearnsWhy() throws Exception {
        Pair p = connect(",pin-all=on", WAIT);
        Ram ram = ram(2L << 20);
        p.source().openRam(ram.source(), p.destination().exposeRam(ram.destination()));
        p.source().writeRam(0, 0, 4096);
        p.source().flushRam();
        p.destination().withdrawRam();
        p.source().writeRam(0, 8192, 4096);
        assertThatThrownBy(() -> p.source().flushRam()).isInstanceOf(IOException.class).hasMessageContaining("REM_ACCESS_ERR")
                .hasMessageContaining("no memory region with this key");
        assertThat(ram.destination().get(0).segment().asSlice(8192, 4096).mismatch(MemorySegment.ofArray(new byte[4096]))).isEqualTo(-1);
    }

    @Test
    void aDestinationWhoseRamIsNotInAFileSaysHowToStartIt() throws Exception {
        Pair p = connect("", WAIT);
        List<RamBlock> anonymous = List.of(new RamBlock("ram", 0x8000_0000L, arena.allocate(1 << 20), null));
        assertThatThrownBy(() -> p.destination().exposeRam(anonymous)).isInstanceOf(IOException.class)
                .hasMessageContaining("'ram' is not backed by a file").hasMessageContaining("memory-backend-file");
    }

    @Test
    void aTokenThatDoesNotMatchTheSourcesRamIsRefused() throws Exception {
        Pair p = connect("", WAIT);
        Ram small = ram(1L << 20);
        Ram big = ram(2L << 20);
        byte[] token = p.destination().exposeRam(small.destination());
        assertThatThrownBy(() -> p.source().openRam(big.source(), token)).hasMessageContaining("'ram0' of 1048576 bytes where the source has 'ram0' of 2097152 bytes");
        assertThatThrownBy(() -> p.source().openRam(big.source(), new byte[] {1, 2, 3})).hasMessageContaining("truncated");
        assertThatThrownBy(() -> p.source().openRam(big.source(), new byte[] {1, 2, 3, 4, 5, 6, 7, 8})).hasMessageContaining("not an rdma-sim token");
    }

    @Test
    void aConnectorThatIsNoMigrationSourceIsRejectedAndTheListenerCarriesOn() throws Exception {
        RdmaSimAcceptor acceptor = RdmaSimAcceptor.listen(RdmaSimAddress.parse("127.0.0.1:0,shm=" + dir), WAIT);
        closeables.add(acceptor);
        CompletableFuture<RdmaSimConnection> in = CompletableFuture.supplyAsync(() -> {
            try {
                return acceptor.accept(WAIT);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        try (RdmaDevice d = RdmaDevice.open(io.modemu.migration.rdmasim.verbs.FabricSettings.defaults().withShmDirectory(dir))) {
            var qp = d.allocateProtectionDomain().createQueuePair(QueuePairConfig.of(d.createCompletionQueue(4), 1, 1));
            int port = Integer.parseInt(acceptor.address().substring(acceptor.address().lastIndexOf(':') + 1));
            assertThatThrownBy(() -> d.connect(new InetSocketAddress("127.0.0.1", port), qp, ConnectionParameters.withPrivateData("hello".getBytes()), WAIT))
                    .isInstanceOf(ConnectionRejectedException.class);
        }
        RdmaSimConnection out = RdmaSimConnection.connect(RdmaSimAddress.parse(acceptor.address() + ",shm=" + dir), WAIT, WAIT);
        closeables.add(out);
        closeables.add(in.join());
        out.write(ByteBuffer.wrap(new byte[] {42}));
        assertThat(readFully(in.join(), 1)).containsExactly(42);
    }

    @Test
    void closedConnectionsLeaveNoThreadsAndNoFilesBehindEvenAfterOneSidedWrites() throws Exception {
        for (int i = 0; i < 3; i++) {
            RdmaSimAcceptor acceptor = RdmaSimAcceptor.listen(RdmaSimAddress.parse("127.0.0.1:0,shm=" + dir), WAIT);
            CompletableFuture<RdmaSimConnection> in = CompletableFuture.supplyAsync(() -> {
                try {
                    return acceptor.accept(WAIT);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            RdmaSimConnection out = RdmaSimConnection.connect(RdmaSimAddress.parse(acceptor.address() + ",shm=" + dir), WAIT, WAIT);
            RdmaSimConnection dst = in.join();
            out.write(ByteBuffer.wrap(new byte[] {1}));
            readFully(dst, 1);
            // one-sided writes too, which start the source's translation prefetcher
            Ram ram = ram(2L << 20);
            out.openRam(ram.source(), dst.exposeRam(ram.destination()));
            out.writeRam(0, 0, 2L << 20);
            out.flushRam();
            out.close();
            dst.close();
            acceptor.close();
            Files.delete(dir.resolve("dest-ram0-" + (files - 1)));
        }
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (true) {
            List<String> left = Thread.getAllStackTraces().keySet().stream().map(Thread::getName)
                    .filter(n -> n.startsWith("rdma-sim") && !n.contains("preloader")).toList();
            if (left.isEmpty()) {
                break;
            }
            assertThat(System.nanoTime()).as("threads still running: %s", left).isLessThan(deadline);
            Thread.sleep(10);
        }
        try (Stream<Path> files = Files.list(dir)) {
            assertThat(files.toList()).isEmpty();
        }
    }
}
