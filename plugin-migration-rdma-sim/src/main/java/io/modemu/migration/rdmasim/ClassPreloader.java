package io.modemu.migration.rdmasim;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loads and initialises the plugin's classes on a background thread when the transport is created
 * (when the plugin host loads the plugin, long before a migration), so that a migration does not pay
 * for class loading in its setup: on the reference machine a cold first connection took ~300 ms,
 * half of it loading classes.
 */
final class ClassPreloader {
    private static final Logger log = LoggerFactory.getLogger(ClassPreloader.class);
    private static volatile boolean started;

    private ClassPreloader() {
    }

    static void startOnce() {
        if (started) {
            return;
        }
        started = true;
        Thread.ofPlatform().daemon().name("rdma-sim class preloader").priority(Thread.MIN_PRIORITY).start(ClassPreloader::run);
    }

    private static void run() {
        long t0 = System.nanoTime();
        int n = 0;
        try {
            for (String name : classNames()) {
                try {
                    Class.forName(name, true, ClassPreloader.class.getClassLoader());
                    n++;
                } catch (ClassNotFoundException | LinkageError e) {
                    log.debug("rdma-sim: not preloading {}: {}", name, e.toString());
                }
            }
        } catch (IOException | RuntimeException | URISyntaxException e) {
            log.debug("rdma-sim: class preloading stopped: {}", e.toString());
        }
        warmJdk();
        long t1 = System.nanoTime();
        warmConnection(io.modemu.migration.rdmasim.verbs.FabricSettings.defaults().shmDirectory());
        log.debug("rdma-sim: preloaded {} classes and warmed the JDK paths of a connection in {} ms, then made a connection of its own in {} ms", n,
                (t1 - t0) / 1_000_000, (System.nanoTime() - t1) / 1_000_000);
    }

    /**
     * Runs, once and on private resources, the JDK code a first connection needs (formatting, mapping
     * a file), so that its one-time initialisation does not land in a migration's setup; sockets and
     * threads are warmed by {@link #warmConnection}, which connects two devices over loopback. Touches
     * nothing of the fabric: no device, no shared file of the fabric.
     */
    private static void warmJdk() {
        try {
            String.format("%x %d %s", 1L, 2, "warm");
            Path f = Files.createTempFile("rdma-sim-warm", ".tmp");
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.READ,
                    java.nio.file.StandardOpenOption.WRITE); java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared()) {
                ch.truncate(4096);
                java.lang.foreign.MemorySegment m = ch.map(java.nio.channels.FileChannel.MapMode.READ_WRITE, 0, 4096, arena);
                m.set(java.lang.foreign.ValueLayout.JAVA_INT, 0, 1);
                ch.write(java.nio.ByteBuffer.allocateDirect(8), 8);
                Files.getOwner(f);
            } finally {
                Files.deleteIfExists(f);
            }
        } catch (IOException | RuntimeException e) {
            log.debug("rdma-sim: warming up stopped: {}", e.toString());
        }
    }

    /**
     * Connects two devices of this process to each other in a private directory made in {@code parent}
     * (the default shared-memory directory) and sends a few stream bytes each way, so that the fabric's own code
     * (opening a device and its table, the connection exchange, queue pairs, the link's threads, the
     * channel's buffers) has run once before a migration's set-up runs it: on the reference machine a
     * first connection took 8–20 ms more than a later one. Removes the directory afterwards.
     *
     * @return whether the connection was made and carried bytes both ways
     */
    static boolean warmConnection(Path parent) {
        Path dir = null;
        try {
            dir = Files.createTempDirectory(parent, "rdma-sim-warm-up-");
            java.time.Duration timeout = java.time.Duration.ofSeconds(5);
            try (RdmaSimAcceptor acceptor = RdmaSimAcceptor.listen(RdmaSimAddress.parse("127.0.0.1:0,shm=" + dir), timeout)) {
                java.util.concurrent.CompletableFuture<RdmaSimConnection> in = new java.util.concurrent.CompletableFuture<>();
                Thread.ofPlatform().daemon().name("rdma-sim warm-up accept").start(() -> {
                    try {
                        in.complete(acceptor.accept(timeout));
                    } catch (IOException | RuntimeException e) {
                        in.completeExceptionally(e);
                    }
                });
                try (RdmaSimConnection out = RdmaSimConnection.connect(RdmaSimAddress.parse(acceptor.address() + ",shm=" + dir), timeout, timeout);
                     RdmaSimConnection back = in.get(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)) {
                    exchange(out, back, timeout);
                    exchange(back, out, timeout);
                    return true;
                }
            }
        } catch (IOException | RuntimeException | java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            log.debug("rdma-sim: the warm-up connection failed: {}", e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            if (dir != null) {
                try (Stream<Path> left = Files.list(dir)) {
                    for (Path f : left.toList()) {
                        Files.deleteIfExists(f);
                    }
                    Files.deleteIfExists(dir);
                } catch (IOException e) {
                    log.debug("rdma-sim: cannot remove the warm-up directory {}: {}", dir, e.toString());
                }
            }
        }
        return false;
    }

    private static void exchange(RdmaSimConnection from, RdmaSimConnection to, java.time.Duration timeout) throws IOException {
        from.write(java.nio.ByteBuffer.wrap(new byte[64]));
        java.nio.ByteBuffer dst = java.nio.ByteBuffer.allocate(64);
        while (dst.hasRemaining()) {
            if (to.read(dst, timeout) < 0) {
                throw new IOException("the warm-up connection closed early");
            }
        }
    }

    /** The classes next to this one and in the fabric's package, from a directory or a jar. */
    private static List<String> classNames() throws IOException, URISyntaxException {
        var location = ClassPreloader.class.getProtectionDomain().getCodeSource();
        if (location == null) {
            return List.of();
        }
        Path root = Path.of(location.getLocation().toURI());
        if (Files.isDirectory(root)) {
            return list(root);
        }
        try (FileSystem jar = FileSystems.newFileSystem(root, Map.of())) {
            return list(jar.getPath("/"));
        }
    }

    private static List<String> list(Path root) throws IOException {
        Path pkg = root.resolve("io/modemu/migration/rdmasim");
        if (!Files.isDirectory(pkg)) {
            return List.of();
        }
        try (Stream<Path> files = Files.walk(pkg)) {
            return files.map(p -> root.relativize(p).toString())
                    .filter(n -> n.endsWith(".class") && !n.endsWith("module-info.class"))
                    .map(n -> n.substring(0, n.length() - ".class".length()).replace('/', '.').replace('\\', '.'))
                    .toList();
        }
    }
}
