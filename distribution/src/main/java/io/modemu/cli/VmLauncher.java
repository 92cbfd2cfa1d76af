package io.modemu.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.MigrationException;
import io.modemu.monitor.Monitor;
import io.modemu.monitor.MonitorCommand;
import io.modemu.monitor.QmpServer;
import io.modemu.options.ConfigurationException;
import io.modemu.options.Options;
import io.modemu.options.Sizes;
import io.modemu.platform.Platform;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns QEMU-style options into a running VM: machine, IOThreads, drives, devices, guest program,
 * QMP monitors, pid file. Nothing is left half-started: if any option fails, everything created so
 * far is torn down and the error names the culprit.
 */
final class VmLauncher implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(VmLauncher.class);

    /** The options of {@code modemu run}, as given. */
    record Config(String machine, String memory, String smp, List<String> objects, List<String> drives, List<String> blockdevs,
                  List<String> devices, String guest, String incoming, List<String> qmp, List<String> serial, String display,
                  String monitor, boolean startPaused, String name, Path pidfile) {
    }

    private final Platform platform;
    private Machine machine;
    private Monitor monitor;
    private final List<QmpServer> qmpServers = new ArrayList<>();
    private Path pidfile;
    private final CountDownLatch quit = new CountDownLatch(1);
    private volatile String quitReason = "host-signal";
    private volatile String failure;

    VmLauncher(Platform platform) {
        this.platform = platform;
    }

    Machine machine() {
        return machine;
    }

    List<QmpServer> qmpServers() {
        return qmpServers;
    }

    /** Builds and (unless -S or -incoming) starts the VM. */
    void launch(Config c) throws InterruptedException {
        try {
            build(c);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private void build(Config c) throws InterruptedException {
        Options mopts = Options.parse("-machine", c.machine() == null ? "virt" : c.machine(), "type");
        String type = mopts.string("type", Machine.TYPE_VIRT);
        long ram = 128L << 20;
        if (mopts.has("memory")) {
            ram = mopts.size("memory", ram);
        }
        String backendId = mopts.string("memory-backend", null);
        mopts.checkAllUsed();
        if (c.memory() != null) {
            Options m = Options.parse("-m", c.memory(), "size");
            ram = Sizes.parse(m.string("size"), 1L << 20, "-m");
            m.checkAllUsed();
        }
        Machine.Builder b = Machine.builder().type(type).contributions(platform.contributions());
        String name = null;
        if (c.name() != null) {
            Options n = Options.parse("-name", c.name(), "guest");
            name = n.string("guest");
            n.checkAllUsed();
            b.name(name);
        }
        if (c.smp() != null) {
            Options s = Options.parse("-smp", c.smp(), "cpus");
            b.vcpus((int) s.integer("cpus", 1, 1, 64));
            s.checkAllUsed();
        }
        Map<String, Options> backends = new LinkedHashMap<>();
        for (String o : c.objects()) {
            Options obj = Options.parse("-object", o, "qom-type");
            String t = obj.string("qom-type");
            switch (t) {
                case "iothread" -> {
                    b.iothread(obj.string("id"));
                    obj.checkAllUsed();
                }
                case "memory-backend-file", "memory-backend-ram" -> backends.put(obj.string("id"), obj);
                default -> throw new ConfigurationException("-object: unknown object type '" + t + "' (supported: iothread, memory-backend-file, memory-backend-ram)");
            }
        }
        if (backendId != null) {
            Options be = backends.remove(backendId);
            if (be == null) {
                throw new ConfigurationException("-machine: memory-backend '" + backendId + "' is not defined (use -object memory-backend-file,id=" + backendId + ",...)");
            }
            ram = be.size("size", ram);
            if (be.string("qom-type").equals("memory-backend-file")) {
                b.ramFile(Path.of(be.string("mem-path")));
                b.ramPrealloc(be.bool("prealloc", false));
                if (!be.bool("share", false)) {
                    throw new ConfigurationException("-object memory-backend-file: share=on is required (guest RAM is mapped shared)");
                }
            }
            be.checkAllUsed();
        }
        if (!backends.isEmpty()) {
            throw new ConfigurationException("-object " + backends.values().iterator().next().string("qom-type") + ",id=" + backends.keySet().iterator().next() + ": not used by -machine memory-backend=");
        }
        b.ram(ram);
        if (c.incoming() != null) {
            b.initialState(RunState.INMIGRATE);
        }
        for (String s : c.serial()) {
            if (!s.equals("none") && !s.equals("null") && !s.equals("stdio") && !s.equals("mon:stdio") && !s.startsWith("file:")) {
                throw new ConfigurationException("-serial: unsupported backend '" + s + "' (use none, null, stdio or file:PATH)");
            }
        }
        if (c.display() != null && !c.display().equals("none")) {
            throw new ConfigurationException("-display: only 'none' is supported (Modemu has no display)");
        }
        if (c.monitor() != null && !c.monitor().equals("none")) {
            throw new ConfigurationException("-monitor: only 'none' is supported (use -qmp for a monitor)");
        }
        machine = b.build();

        for (String d : c.drives()) {
            addDrive(d);
        }
        for (String d : c.blockdevs()) {
            addBlockdev(d);
        }
        for (String d : c.devices()) {
            Options o = Options.parse("-device", d, "driver");
            if (o.string("driver").equals("loader")) {
                Path file = Path.of(o.string("file"));
                long addr = o.integer("addr", -1, 0, Long.MAX_VALUE);
                if (addr < 0) {
                    throw new ConfigurationException("-device loader: addr= is required");
                }
                o.checkAllUsed();
                machine.loadImage(file, addr);
            } else {
                machine.addDevice(o);
            }
        }
        if (c.guest() != null) {
            Options g = Options.parse("-guest", c.guest(), "program");
            String program = g.string("program");
            Map<String, String> rest = new LinkedHashMap<>(g.asMap());
            rest.remove("program");
            machine.loadGuest(program, Options.of("-guest " + program, rest));
        }
        monitor = new Monitor(machine, platform.plugins().plugins(), platform.plugins().problems(), reason -> {
            quitReason = reason;
            quit.countDown();
        });
        for (MonitorCommand mc : platform.contributions().monitorCommands()) {
            monitor.register(mc);
        }
        // -incoming URI and -incoming defer + migrate-incoming alike: a destination that failed exits
        machine.addEventListener(e -> {
            if (e.name().equals("MIGRATION") && "failed".equals(e.data().get("status")) && machine.runState() == RunState.INMIGRATE) {
                watchIncoming();
            }
        });
        for (String q : c.qmp()) {
            qmpServers.add(QmpServer.start(monitor, q));
        }
        if (c.pidfile() != null) {
            try {
                Files.writeString(c.pidfile(), ProcessHandle.current().pid() + "\n");
                pidfile = c.pidfile();
            } catch (IOException e) {
                throw new ConfigurationException("-pidfile: cannot write " + c.pidfile() + ": " + e.getMessage());
            }
        }
        if (c.startPaused()) {
            machine.setAutostart(false);
        }
        if (c.incoming() != null && !c.incoming().equals("defer")) {
            scheme(c.incoming());
            try {
                String bound = monitor.migration().incoming(c.incoming(), new IncomingOptions(!c.startPaused(), false));
                log.info("waiting for an incoming migration on {}", bound);
            } catch (MigrationException | java.io.UncheckedIOException e) {
                throw new ConfigurationException("-incoming: " + e.getMessage(), e);
            }
        }
        for (QmpServer s : qmpServers) {
            s.awaitFirstClientIfAsked();
        }
        if (c.incoming() == null && !c.startPaused()) {
            machine.loopDriver().await(machine.vmStart());
        }
    }

    static String scheme(String uri) {
        int colon = uri.indexOf(':');
        if (colon <= 0) {
            throw new ConfigurationException("'" + uri + "' is not a migration URI (expected SCHEME:ADDRESS, for example tcp:127.0.0.1:4444)");
        }
        return uri.substring(0, colon);
    }

    private void addDrive(String text) {
        Options o = Options.parse("-drive", text, null);
        String id = o.string("id");
        String iface = o.string("if", "none");
        if (!iface.equals("none")) {
            throw new ConfigurationException("-drive: if=" + iface + " is not supported: use if=none and -device virtio-blk-device,drive=" + id);
        }
        o.choice("media", "disk", List.of("disk"));
        String cache = o.choice("cache", "writeback", List.of("writeback", "none", "writethrough", "directsync", "unsafe"));
        if (!cache.equals("writeback") && !cache.equals("unsafe")) {
            log.info("-drive {}: cache={} runs as writeback (the page cache), with flushes honoured", id, cache);
        }
        Map<String, String> driver = new LinkedHashMap<>(o.asMap());
        for (String k : List.of("id", "if", "media", "cache", "format", "file", "readonly", "driver")) {
            driver.remove(k);
        }
        String drv = o.string("driver", null);
        String format = o.string("format", "raw");
        String file = o.string("file", null);
        if (drv == null) {
            if (!format.equals("raw")) {
                throw new ConfigurationException("-drive " + id + ": format=" + format + " is not supported (raw images only)");
            }
            if (file == null) {
                throw new ConfigurationException("-drive " + id + ": file= is required (or driver=NAME for a driver without a file)");
            }
            drv = "file";
        }
        if (file != null) {
            driver.put("filename", file);
        }
        if (o.bool("readonly", false)) {
            driver.put("read-only", "on");
        }
        driver.put("driver", drv);
        o.asMap().keySet().forEach(o::accept);
        machine.addDrive(id, Options.of("-drive " + id, driver));
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private void addBlockdev(String text) {
        Map<String, String> flat = new LinkedHashMap<>();
        if (text.trim().startsWith("{")) {
            try {
                flatten("", JSON.readTree(text), flat);
            } catch (IOException e) {
                throw new ConfigurationException("-blockdev: invalid JSON: " + e.getMessage().lines().findFirst().orElse(""));
            }
        } else {
            flat.putAll(Options.parse("-blockdev", text, null).asMap());
        }
        String id = flat.remove("node-name");
        if (id == null) {
            throw new ConfigurationException("-blockdev: node-name is required");
        }
        String drv = flat.get("driver");
        if ("raw".equals(drv)) {
            // raw format over a protocol node: a raw image is what the file driver opens directly
            Map<String, String> inner = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, String>> it = flat.entrySet().iterator(); it.hasNext(); ) {
                var e = it.next();
                if (e.getKey().startsWith("file.")) {
                    inner.put(e.getKey().substring(5), e.getValue());
                    it.remove();
                }
            }
            if (inner.isEmpty()) {
                throw new ConfigurationException("-blockdev " + id + ": driver=raw needs a file (file.driver=file,file.filename=PATH)");
            }
            if (flat.containsKey("read-only")) {
                inner.put("read-only", flat.remove("read-only"));
            }
            flat.remove("driver");
            if (!flat.isEmpty()) {
                throw new ConfigurationException("-blockdev " + id + ": unknown option '" + flat.keySet().iterator().next() + "'");
            }
            flat = inner;
            flat.remove("node-name");
        }
        if (flat.get("driver") == null) {
            throw new ConfigurationException("-blockdev " + id + ": driver is required");
        }
        machine.addDrive(id, Options.of("-blockdev " + id, flat));
    }

    private static void flatten(String prefix, JsonNode n, Map<String, String> out) {
        if (n.isObject()) {
            n.fields().forEachRemaining(e -> flatten(prefix.isEmpty() ? e.getKey() : prefix + "." + e.getKey(), e.getValue(), out));
        } else if (n.isBoolean()) {
            out.put(prefix, n.asBoolean() ? "on" : "off");
        } else if (n.isValueNode()) {
            out.put(prefix, n.asText());
        } else {
            throw new ConfigurationException("-blockdev: option '" + prefix + "' cannot be an array");
        }
    }

    /**
     * A destination whose incoming migration failed exits non-zero with the reason, whether it was
     * started by {@code -incoming URI} or by {@code migrate-incoming} after {@code -incoming defer}
     * (QEMU 7.2 exits in both cases). Called once the incoming migration reported {@code failed}.
     */
    private void watchIncoming() {
        monitor.migration().completion().whenComplete((info, t) -> {
            if (t != null || info.status() == io.modemu.migration.MigrationStatus.FAILED) {
                String why = t != null ? t.getMessage() : info.errorDesc();
                log.error("incoming migration failed: {}", why);
                failure = "incoming migration failed: " + why;
                requestQuit("host-error");
            }
        });
    }

    /** Why the VM ended abnormally (the process then exits non-zero), or null. */
    String failure() {
        return failure;
    }

    /** Blocks until a QMP client asks to quit or the process is told to stop. */
    String awaitQuit() throws InterruptedException {
        quit.await();
        return quitReason;
    }

    void requestQuit(String reason) {
        quitReason = reason;
        quit.countDown();
    }

    /** Emits SHUTDOWN, then tears everything down. Idempotent. */
    @Override
    public void close() {
        if (machine != null) {
            try {
                machine.emit("SHUTDOWN", Map.of("guest", false, "reason", quitReason));
                machine.onMainLoop(() -> null);
                for (QmpServer s : qmpServers) {
                    s.flush(500);
                }
            } catch (RuntimeException e) {
                log.debug("shutdown event not delivered", e);
            }
        }
        for (QmpServer s : qmpServers) {
            s.close();
        }
        qmpServers.clear();
        if (monitor != null) {
            monitor.migration().close();
        }
        if (machine != null) {
            machine.close();
            machine = null;
        }
        if (pidfile != null) {
            try {
                Files.deleteIfExists(pidfile);
            } catch (IOException e) {
                log.warn("cannot remove pid file {}", pidfile);
            }
        }
    }
}
