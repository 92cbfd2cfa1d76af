package io.modemu.migration.rdmasim.verbs;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Test support: a private shared-memory directory, devices in it, connected queue pairs, and an arena
 * for the tests' buffers. A test class registers it as an extension ({@code @RegisterExtension final
 * TestFabric fabric = new TestFabric();}): it is closed after each test, after the class's own
 * {@code @AfterEach} methods, devices first, then the arena.
 */
final class TestFabric implements AutoCloseable, AfterEachCallback {
    static final Duration WAIT = Duration.ofSeconds(30);

    final Path dir;
    private final List<AutoCloseable> closeables = new ArrayList<>();
    private final boolean mappedWrites;
    private final Arena arena = Arena.ofShared();

    TestFabric() {
        this(true);
    }

    /** @param mappedWrites the devices' {@link FabricSettings#mappedWrites()} */
    TestFabric(boolean mappedWrites) {
        this.mappedWrites = mappedWrites;
        try {
            Path shm = Path.of("/dev/shm");
            dir = Files.createTempDirectory(Files.isDirectory(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir")), "rdmasim-test-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Memory for the test's buffers, freed when the fabric closes (after its devices). */
    Arena arena() {
        return arena;
    }

    FabricSettings settings() {
        return FabricSettings.defaults().withShmDirectory(dir).withMappedWrites(mappedWrites);
    }

    RdmaDevice device() {
        return device(settings());
    }

    RdmaDevice device(FabricSettings s) {
        try {
            RdmaDevice d = RdmaDevice.open(s);
            closeables.add(d);
            return d;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** One side of a connection: its device, domain, completion queue and queue pair. */
    record Side(RdmaDevice device, ProtectionDomain pd, CompletionQueue cq, QueuePair qp, Connection connection) {
    }

    record Pair(Side a, Side b) {
    }

    static InetSocketAddress loopback() {
        return new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
    }

    /** Two devices, a connected queue pair on each (A connected to B's listener). */
    Pair connect(ConnectionParameters pa, ConnectionParameters pb, int depth) {
        RdmaDevice da = device();
        RdmaDevice db = device();
        return connect(da, db, pa, pb, depth);
    }

    Pair connect() {
        return connect(ConnectionParameters.defaults(), ConnectionParameters.defaults(), 64);
    }

    Pair connect(RdmaDevice da, RdmaDevice db, ConnectionParameters pa, ConnectionParameters pb, int depth) {
        try {
            ProtectionDomain pdA = da.allocateProtectionDomain();
            ProtectionDomain pdB = db.allocateProtectionDomain();
            CompletionQueue cqA = da.createCompletionQueue(4 * depth);
            CompletionQueue cqB = db.createCompletionQueue(4 * depth);
            QueuePair qpA = pdA.createQueuePair(QueuePairConfig.of(cqA, depth, depth));
            QueuePair qpB = pdB.createQueuePair(QueuePairConfig.of(cqB, depth, depth));
            ConnectionListener l = db.listen(loopback());
            CompletableFuture<Connection> accepted = CompletableFuture.supplyAsync(() -> {
                try {
                    return l.accept(WAIT).accept(qpB, pb);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            Connection ca = da.connect(l.localAddress(), qpA, pa, WAIT);
            Connection cb = accepted.join();
            l.close();
            return new Pair(new Side(da, pdA, cqA, qpA, ca), new Side(db, pdB, cqB, qpB, cb));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Waits for the next completion on {@code cq}; fails the test if none comes. */
    static WorkCompletion next(CompletionQueue cq) {
        try {
            WorkCompletion wc = cq.take(WAIT);
            if (wc == null) {
                throw new AssertionError("no completion on " + cq + " within " + WAIT);
            }
            return wc;
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    /** Waits until {@code qp} is in {@code state}; fails the test if it never gets there. */
    static void awaitState(QueuePair qp, QpState state) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (qp.state() != state) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(qp + " did not reach " + state + " within " + WAIT);
            }
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
    }

    @Override
    public void afterEach(ExtensionContext context) throws Exception {
        close();
    }

    @Override
    public void close() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) {
            closeables.get(i).close();
        }
        closeables.clear();
        if (arena.scope().isAlive()) {
            arena.close();
        }
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.deleteIfExists(f);
            }
        }
        Files.deleteIfExists(dir);
    }
}
