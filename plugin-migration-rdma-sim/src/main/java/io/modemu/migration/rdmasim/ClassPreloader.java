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
        log.debug("rdma-sim: preloaded {} classes in {} ms", n, (System.nanoTime() - t0) / 1_000_000);
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
