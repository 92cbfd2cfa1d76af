package io.modemu.migration.tcp.testbed;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A {@link MigrationLauncher} in its own JVM, set up like an installation: the platform and its
 * libraries on the module path, the plugin jars (the transport under test, file, virtio-blk,
 * disk-verify) in a plugins directory loaded by the plugin host, and only the test bed on the class
 * path. Collects the child's {@code @key=value} lines; everything else it prints goes to a log file.
 */
public final class ChildJvm implements AutoCloseable {
    /** What stays off the module path: test libraries, the plugins (they go to the plugins directory), and what the distribution leaves out too. */
    private static final List<String> NOT_ON_MODULE_PATH = List.of("junit-", "opentest4j", "apiguardian", "assertj", "byte-buddy", "modemu-plugin-",
            "jsr305", "checker-qual", "error_prone_annotations", "j2objc-annotations", "listenablefuture", "jazzer", "jqwik");

    /** The stock plugins a test bed machine uses, by artifact id. */
    private static final List<String> STOCK_PLUGINS = List.of("modemu-plugin-file", "modemu-plugin-virtio-blk", "modemu-plugin-disk-verify");

    private final Process process;
    private final Map<String, String> values = new ConcurrentHashMap<>();
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final Path log;

    private ChildJvm(Process process, Path log) {
        this.process = process;
        this.log = log;
        Thread.ofPlatform().name("child-out").daemon(true).start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
                 var w = Files.newBufferedWriter(log, StandardCharsets.UTF_8)) {
                String line;
                while ((line = r.readLine()) != null) {
                    w.write(line);
                    w.newLine();
                    w.flush();
                    if (line.startsWith("@") && line.indexOf('=') > 0) {
                        values.put(line.substring(1, line.indexOf('=')), line.substring(line.indexOf('=') + 1));
                        lines.add(line.substring(1));
                    }
                }
            } catch (IOException e) {
                // the child went away
            }
        });
    }

    /** Starts a launcher with {@code args}; {@code work} receives the plugins directory and the log. */
    public static ChildJvm start(Path work, String name, List<String> args) throws IOException {
        Path plugins = work.resolve("plugins");
        preparePlugins(plugins);
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Dguice_custom_class_loading=CHILD");
        cmd.add("-XX:+EnableDynamicAgentLoading");
        cmd.add("-Xss1m");
        // as bin/modemu runs it: the platform (a named module here) gives guest RAM its I/O view
        cmd.add("--enable-native-access=io.modemu.platform");
        for (String o : System.getProperty("modemu.child.jvm.options", "").split(" ")) {
            if (!o.isBlank()) {
                cmd.add(o.replace("{name}", name));
            }
        }
        cmd.add("--module-path");
        cmd.add(String.join(java.io.File.pathSeparator, modulePath()));
        cmd.add("--add-modules");
        cmd.add("io.modemu.platform");
        cmd.add("-cp");
        cmd.add(System.getProperty("modemu.child.classpath", testBed().toString()));
        cmd.add(MigrationLauncher.class.getName());
        cmd.add("plugins=" + plugins);
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        return new ChildJvm(pb.start(), work.resolve(name + ".log"));
    }

    /** The value the child printed for {@code key}, waiting up to {@code timeout} for it. */
    public String await(String key, Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (!values.containsKey(key)) {
            if (!process.isAlive() && !values.containsKey(key)) {
                Thread.sleep(100);
                if (!values.containsKey(key)) {
                    throw new AssertionError("the child exited with " + process.exitValue() + " without printing '" + key + "'; see " + log);
                }
            }
            if (System.nanoTime() > end) {
                throw new AssertionError("no '" + key + "' from the child within " + timeout + "; see " + log);
            }
            lines.poll(50, TimeUnit.MILLISECONDS);
        }
        return values.get(key);
    }

    public String value(String key) {
        return values.get(key);
    }

    public Map<String, String> values() {
        return Map.copyOf(values);
    }

    public int waitFor(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("the child did not exit within " + timeout + "; see " + log);
        }
        Thread.sleep(50);
        return process.exitValue();
    }

    /** Writes {@code line} to the child's standard input (a launcher waiting for {@code to=stdin} reads its URI there). */
    public void send(String line) throws IOException {
        var in = process.getOutputStream();
        in.write((line + "\n").getBytes(StandardCharsets.UTF_8));
        in.flush();
    }

    /** Kills the child at once (SIGKILL): a destination that dies. */
    public void kill() {
        process.destroyForcibly();
    }

    public Path log() {
        return log;
    }

    @Override
    public void close() {
        process.destroyForcibly();
    }

    private static Path testBed() {
        try {
            return Path.of(MigrationLauncher.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static List<Path> classPath() {
        List<Path> out = new ArrayList<>();
        for (String e : System.getProperty("java.class.path").split(java.io.File.pathSeparator)) {
            if (!e.isEmpty()) {
                out.add(Path.of(e));
            }
        }
        return out;
    }

    private static List<String> modulePath() {
        List<String> out = new ArrayList<>();
        for (Path p : classPath()) {
            String n = p.getFileName().toString();
            if (NOT_ON_MODULE_PATH.stream().noneMatch(n::startsWith) && n.endsWith(".jar")) {
                out.add(p.toString());
            }
        }
        if (out.stream().noneMatch(s -> Path.of(s).getFileName().toString().startsWith("modemu-platform"))) {
            throw new IllegalStateException("the platform jar is not on the class path (run after 'package'): " + classPath());
        }
        return out;
    }

    /**
     * Copies the plugin jars: the transport under test (system property {@code modemu.plugin.jar}, the
     * module's own packaged plugin) and the stock plugins the test bed's machines use (from the class path).
     */
    static void preparePlugins(Path dir) throws IOException {
        Files.createDirectories(dir);
        String transport = System.getProperty("modemu.plugin.jar");
        if (transport == null || !Files.isRegularFile(Path.of(transport))) {
            throw new IllegalStateException("set modemu.plugin.jar to the packaged transport plugin (run after 'package'), not " + transport);
        }
        copy(Path.of(transport), dir);
        List<String> missing = new ArrayList<>(STOCK_PLUGINS);
        for (Path p : classPath()) {
            String n = p.getFileName().toString();
            for (String stock : STOCK_PLUGINS) {
                if (n.startsWith(stock + "-") && n.endsWith(".jar") && !n.endsWith("-tests.jar")) {
                    copy(p, dir);
                    missing.remove(stock);
                }
            }
        }
        if (!missing.isEmpty()) {
            throw new IllegalStateException("plugin jars not on the class path (run after 'package'): " + missing);
        }
    }

    private static void copy(Path jar, Path dir) {
        try {
            Files.copy(jar, dir.resolve(jar.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
