package io.modemu.monitor;

import io.modemu.aio.AioContext;
import io.modemu.block.BlockBackend;
import io.modemu.block.BlockStats;
import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.platform.PlatformVersion;
import io.modemu.plugin.ContributionKind;
import io.modemu.plugin.PluginInfo;
import io.modemu.plugin.PluginProblem;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * The command side of the QMP monitor: QEMU's commands with their names, arguments and reply
 * shapes, plus Modemu's own ({@code query-plugins}, {@code query-guest}) and whatever plugins and the
 * process add. Thread-safe; commands run on the calling connection's thread and reach the machine
 * through its main loop.
 */
public final class Monitor implements MonitorContext {
    /** The QEMU version whose QMP Modemu follows. */
    public static final Map<String, Object> QEMU_VERSION = Map.of("major", 7, "minor", 2, "micro", 0);

    private final Machine machine;
    private final Collection<PluginInfo> plugins;
    private final Collection<PluginProblem> pluginProblems;
    private final Consumer<String> quit;
    private final Map<String, MonitorCommand> commands = new ConcurrentHashMap<>();
    private final Map<Class<?>, Object> services = new ConcurrentHashMap<>();
    private final io.modemu.migration.LiveMigration migration;

    /**
     * @param quit called (once the reply is on its way) when a client asks the process to quit, with the reason
     */
    public Monitor(Machine machine, Collection<PluginInfo> plugins, Collection<PluginProblem> pluginProblems, Consumer<String> quit) {
        this.machine = machine;
        this.plugins = plugins;
        this.pluginProblems = pluginProblems;
        this.quit = quit;
        this.migration = new io.modemu.migration.LiveMigration(machine);
        registerBuiltins();
        registerMigration();
    }

    /** The machine's live migration, as the migration commands drive it. */
    public io.modemu.migration.LiveMigration migration() {
        return migration;
    }

    /** Runs {@code body}, turning the engine's refusals into GenericErrors with their message. */
    private static Object migrationCall(java.util.function.Supplier<Object> body) {
        try {
            return body.get();
        } catch (io.modemu.migration.MigrationException | IllegalArgumentException | io.modemu.options.ConfigurationException
                 | java.io.UncheckedIOException e) {
            throw QmpError.generic(e.getMessage());
        }
    }

    private void registerMigration() {
        register("migrate", (a, ctx) -> {
            String uri = a.string("uri");
            if (a.bool("blk", false) || a.bool("inc", false)) {
                throw QmpError.generic("Parameter 'blk'/'inc' (block migration) is not supported: use a shared disk image");
            }
            if (a.bool("resume", false)) {
                throw QmpError.generic("Parameter 'resume' (postcopy recovery) is not supported");
            }
            a.bool("detach", true);
            return migrationCall(() -> {
                migration.migrate(uri);
                return Map.of();
            });
        });
        register("migrate-incoming", (a, ctx) -> {
            String uri = a.string("uri");
            return migrationCall(() -> {
                migration.incoming(uri, new io.modemu.migration.IncomingOptions(machine.autostart(), false));
                return Map.of();
            });
        });
        register("query-migrate", (a, ctx) -> migration.info().toQmp());
        register("migrate_cancel", (a, ctx) -> {
            migration.cancel();
            return Map.of();
        });
        register("migrate-set-parameters", (a, ctx) -> migrationCall(() -> {
            a.asMap().keySet().forEach(a::has);
            migration.setParameters(migration.parameters().withQmp(a.asMap()));
            return Map.of();
        }));
        register("query-migrate-parameters", (a, ctx) -> migration.parameters().toQmp());
        register("migrate-set-capabilities", (a, ctx) -> migrationCall(() -> {
            for (Map<String, Object> c : a.objects("capabilities")) {
                Object name = c.get("capability");
                Object state = c.get("state");
                if (!(name instanceof String n) || !(state instanceof Boolean on)) {
                    throw QmpError.generic("Invalid parameter type for 'capabilities', expected: {capability: string, state: boolean}");
                }
                migration.setCapability(io.modemu.migration.MigrationCapability.fromName(n), on);
            }
            return Map.of();
        }));
        register("query-migrate-capabilities", (a, ctx) -> migration.capabilitiesQmp());
    }

    @Override
    public Machine machine() {
        return machine;
    }

    @Override
    public void requestQuit(String reason) {
        quit.accept(reason);
    }

    @Override
    public <T> T service(Class<T> type) {
        return type.cast(services.get(type));
    }

    /** Makes {@code service} available to commands through {@link #service(Class)}. */
    public <T> void addService(Class<T> type, T service) {
        services.put(type, service);
    }

    /** Adds a command; a name already taken is an error naming it. */
    public void register(MonitorCommand c) {
        if (commands.putIfAbsent(c.name(), c) != null) {
            throw new IllegalArgumentException("QMP command '" + c.name() + "' is registered twice");
        }
    }

    /** Adds a command from a lambda. */
    public void register(String name, java.util.function.BiFunction<CommandArguments, MonitorContext, Object> body) {
        register(new MonitorCommand() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Object execute(CommandArguments arguments, MonitorContext context) {
                return body.apply(arguments, context);
            }
        });
    }

    public List<String> commandNames() {
        List<String> names = new ArrayList<>(commands.keySet());
        names.add("qmp_capabilities");
        names.sort(null);
        return names;
    }

    /**
     * Runs command {@code name}.
     *
     * @throws QmpError CommandNotFound for an unknown command, GenericError for bad arguments or a failure
     */
    public Object execute(String name, Map<String, Object> arguments) {
        MonitorCommand c = commands.get(name);
        if (c == null) {
            throw new QmpError(QmpError.COMMAND_NOT_FOUND, "The command " + name + " has not been found");
        }
        CommandArguments args = new CommandArguments(arguments);
        Object result = c.execute(args, this);
        args.checkNoneUnexpected();
        return result == null ? Map.of() : result;
    }

    /** Waits for a machine future from a monitor thread, turning failures into GenericErrors. */
    public static <T> T await(CompletableFuture<T> f) {
        try {
            return f.get(60, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw QmpError.generic("timed out after 60 s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw QmpError.generic("interrupted");
        } catch (java.util.concurrent.ExecutionException | CompletionException e) {
            Throwable c = e.getCause() != null ? e.getCause() : e;
            if (c instanceof QmpError q) {
                throw q;
            }
            throw QmpError.generic(c.getMessage() != null ? c.getMessage() : c.toString());
        }
    }

    private static boolean needsReset(RunState s) {
        return s == RunState.INTERNAL_ERROR || s == RunState.SHUTDOWN || s == RunState.GUEST_PANICKED;
    }

    private void registerBuiltins() {
        register("query-status", (a, ctx) -> {
            RunState s = machine.runState();
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("status", s.qapiName());
            r.put("singlestep", false);
            r.put("running", s == RunState.RUNNING);
            return r;
        });
        register("stop", (a, ctx) -> {
            if (machine.runState() == RunState.INMIGRATE) {
                machine.setAutostart(false);
            } else {
                await(machine.vmStop(RunState.PAUSED));
            }
            return Map.of();
        });
        register("cont", (a, ctx) -> {
            RunState s = machine.runState();
            if (needsReset(s)) {
                throw QmpError.generic("Resetting the Virtual Machine is required");
            }
            if (s == RunState.INMIGRATE) {
                machine.setAutostart(true);
            } else if (s != RunState.SUSPENDED) {
                await(machine.vmStart());
            }
            return Map.of();
        });
        register("system_reset", (a, ctx) -> {
            await(machine.systemReset());
            return Map.of();
        });
        register("quit", (a, ctx) -> {
            ctx.requestQuit("host-qmp-quit");
            return Map.of();
        });
        register("query-version", (a, ctx) -> {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("qemu", QEMU_VERSION);
            r.put("package", "modemu-" + PlatformVersion.get());
            return r;
        });
        register("query-commands", (a, ctx) -> commandNames().stream().map(n -> Map.of("name", n)).toList());
        register("query-name", (a, ctx) -> machine.name() == null ? Map.of() : Map.of("name", machine.name()));
        register("query-iothreads", (a, ctx) -> {
            List<Object> out = new ArrayList<>();
            for (AioContext c : machine.iothreads().values()) {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("id", c.name());
                r.put("thread-id", c.nativeThreadId());
                r.put("poll-max-ns", 0);
                r.put("poll-grow", 0);
                r.put("poll-shrink", 0);
                r.put("aio-max-batch", 0);
                out.add(r);
            }
            return out;
        });
        register("query-block", (a, ctx) -> {
            List<Object> out = new ArrayList<>();
            for (BlockBackend b : machine.blockBackends().values()) {
                out.add(blockInfo(b));
            }
            return out;
        });
        register("query-blockstats", (a, ctx) -> {
            a.bool("query-nodes", false);
            List<Object> out = new ArrayList<>();
            for (BlockBackend b : machine.blockBackends().values()) {
                out.add(blockStats(b));
            }
            return out;
        });
        register("query-plugins", (a, ctx) -> {
            List<Object> out = new ArrayList<>();
            for (PluginInfo p : plugins) {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("id", p.id());
                r.put("version", p.version());
                r.put("module", p.moduleName());
                r.put("state", "started");
                Map<String, Object> c = new TreeMap<>();
                for (ContributionKind k : ContributionKind.values()) {
                    c.put(k.label().replace(' ', '-') + "s", p.contributions().getOrDefault(k, List.of()));
                }
                r.put("contributes", c);
                out.add(r);
            }
            for (PluginProblem p : pluginProblems) {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("id", p.pluginId());
                r.put("state", p.disabled() ? "disabled" : "failed");
                r.put("reason", p.reason());
                out.add(r);
            }
            return out;
        });
        register("query-guest", (a, ctx) -> {
            Map<String, Object> r = new LinkedHashMap<>();
            var cpus = machine.vcpus();
            var task = cpus.isEmpty() ? null : cpus.getFirst().task();
            r.put("loaded", task != null);
            if (task != null) {
                r.put("steps", cpus.getFirst().steps());
                r.putAll(task.status());
            }
            return r;
        });
    }

    private static Map<String, Object> blockInfo(BlockBackend b) {
        Map<String, Object> image = new LinkedHashMap<>();
        image.put("filename", b.node().describe());
        image.put("format", b.driverName());
        image.put("virtual-size", b.size());
        Map<String, Object> cache = new LinkedHashMap<>();
        cache.put("writeback", true);
        cache.put("direct", false);
        cache.put("no-flush", false);
        Map<String, Object> inserted = new LinkedHashMap<>();
        inserted.put("file", b.node().describe());
        inserted.put("node-name", b.id());
        inserted.put("ro", b.isReadOnly());
        inserted.put("drv", b.driverName());
        inserted.put("backing_file_depth", 0);
        inserted.put("encrypted", false);
        inserted.put("detect_zeroes", "off");
        for (String k : List.of("bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr")) {
            inserted.put(k, 0);
        }
        inserted.put("image", image);
        inserted.put("cache", cache);
        inserted.put("write_threshold", 0);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("device", b.id());
        if (b.attachedDevice() != null) {
            r.put("qdev", b.attachedDevice());
        }
        r.put("type", "unknown");
        r.put("removable", false);
        r.put("locked", false);
        r.put("io-status", "ok");
        r.put("inserted", inserted);
        return r;
    }

    private static Map<String, Object> blockStats(BlockBackend b) {
        BlockStats s = b.stats();
        Map<String, Object> st = new LinkedHashMap<>();
        st.put("rd_bytes", s.readBytes());
        st.put("wr_bytes", s.writeBytes());
        st.put("unmap_bytes", 0);
        st.put("rd_operations", s.readOps());
        st.put("wr_operations", s.writeOps() + s.writeZeroesOps());
        st.put("flush_operations", s.flushOps());
        st.put("unmap_operations", s.discardOps());
        for (String k : List.of("rd_total_time_ns", "wr_total_time_ns", "flush_total_time_ns",
                "unmap_total_time_ns", "rd_merged", "wr_merged", "unmap_merged")) {
            st.put(k, 0);
        }
        st.put("wr_highest_offset", s.writeHighestOffset());
        st.put("failed_rd_operations", s.failedReadOps());
        st.put("failed_wr_operations", s.failedWriteOps());
        st.put("failed_flush_operations", s.failedFlushOps());
        st.put("failed_unmap_operations", s.failedDiscardOps());
        for (String k : List.of("invalid_rd_operations", "invalid_wr_operations",
                "invalid_flush_operations", "invalid_unmap_operations")) {
            st.put(k, 0);
        }
        st.put("account_invalid", false);
        st.put("account_failed", true);
        st.put("timed_stats", List.of());
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("device", b.id());
        r.put("node-name", b.id());
        if (b.attachedDevice() != null) {
            r.put("qdev", b.attachedDevice());
        }
        r.put("stats", st);
        return r;
    }
}
