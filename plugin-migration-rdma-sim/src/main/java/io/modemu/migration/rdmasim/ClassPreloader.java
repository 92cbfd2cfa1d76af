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
        log.debug("rdma-sim: preloaded {} classes and warmed the JDK paths of a connection in {} ms", n, (System.nanoTime() - t0) / 1_000_000);
    }

    /**
     * Runs, once and on private resources, the JDK code a first connection needs (formatting, mapping
     * a file, a loopback socket pair, a thread), so that its one-time initialisation does not land in a
     * migration's setup. Touches nothing of the fabric: no device, no shared file of the fabric.
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
            try (java.nio.channels.ServerSocketChannel server = java.nio.channels.ServerSocketChannel.open()) {
                server.bind(new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0));
                try (java.nio.channels.SocketChannel a = java.nio.channels.SocketChannel.open()) {
                    a.socket().connect(server.getLocalAddress(), 1000);
                    a.socket().setTcpNoDelay(true);
                    try (java.nio.channels.SocketChannel b = server.socket().accept().getChannel()) {
                        a.write(java.nio.ByteBuffer.wrap(new byte[8]));
                        new java.io.DataInputStream(b.socket().getInputStream()).readLong();
                    }
                }
            }
            Thread.ofPlatform().daemon().start(() -> { }).join();
        } catch (IOException | RuntimeException | InterruptedException e) {
            log.debug("rdma-sim: warming up stopped: {}", e.toString());
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
