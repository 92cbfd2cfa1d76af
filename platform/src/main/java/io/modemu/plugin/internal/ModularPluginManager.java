package io.modemu.plugin.internal;

import io.modemu.block.BlockDriver;
import io.modemu.device.DeviceType;
import io.modemu.guest.GuestProgram;
import io.modemu.migration.MigrationTransport;
import io.modemu.options.ConfigurationException;
import io.modemu.plugin.ContributionKind;
import io.modemu.plugin.Contributions;
import io.modemu.plugin.PluginInfo;
import io.modemu.plugin.PluginProblem;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.pf4j.CompoundPluginRepository;
import org.pf4j.DefaultPluginManager;
import org.pf4j.DefaultPluginRepository;
import org.pf4j.ExtensionFinder;
import org.pf4j.JarPluginRepository;
import org.pf4j.PluginDependency;
import org.pf4j.PluginDescriptor;
import org.pf4j.PluginDescriptorFinder;
import org.pf4j.PluginFactory;
import org.pf4j.PluginLoader;
import org.pf4j.PluginRepository;
import org.pf4j.PluginState;
import org.pf4j.PluginWrapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * pf4j's plugin manager with Modemu's rules: module layers instead of pf4j class loaders, a
 * descriptor pre-pass that orders plugins by dependency and rejects the ones that cannot load with a
 * reason (instead of pf4j's log-and-disable), and contributions found with ServiceLoader per layer.
 */
public final class ModularPluginManager extends DefaultPluginManager {
    private static final Logger log = LoggerFactory.getLogger(ModularPluginManager.class);
    static final String CONTRIBUTES = "Modemu-Contributes";

    private final ModuleLayer platformLayer;
    private final Map<String, ModuleLayer> layers = new ConcurrentHashMap<>();
    private final Map<String, String> moduleNames = new ConcurrentHashMap<>();
    private final List<PluginProblem> problems = new ArrayList<>();
    private final List<PluginInfo> loaded = new ArrayList<>();
    private final Map<String, Path> pathsById = new HashMap<>();
    private final Map<String, List<String>> declared = new HashMap<>();
    private Contributions contributions = Contributions.builder().build();

    public ModularPluginManager(Path pluginsDir, String platformVersion, ModuleLayer platformLayer) {
        super(pluginsDir);
        this.platformLayer = platformLayer;
        setSystemVersion(platformVersion);
        setExactVersionAllowed(false);
        setResolveRecoveryStrategy(ResolveRecoveryStrategy.IGNORE_PLUGIN_AND_CONTINUE);
    }

    ModuleLayer platformLayer() {
        return platformLayer;
    }

    void registerLayer(String id, String moduleName, ModuleLayer layer) {
        layers.put(id, layer);
        moduleNames.put(id, moduleName);
    }

    ModuleLayer layerOfOrNull(String id) {
        return layers.get(id);
    }

    public ModuleLayer layerOf(String id) {
        ModuleLayer l = layers.get(id);
        if (l == null) {
            throw new IllegalArgumentException("plugin '" + id + "' is not loaded");
        }
        return l;
    }

    public List<PluginInfo> loaded() {
        return List.copyOf(loaded);
    }

    public List<PluginProblem> problems() {
        return List.copyOf(problems);
    }

    public Contributions contributions() {
        return contributions;
    }

    // ---- pf4j factories ----

    @Override
    protected PluginRepository createPluginRepository() {
        return new CompoundPluginRepository()
                .add(new JarPluginRepository(getPluginsRoots()))
                .add(new DefaultPluginRepository(getPluginsRoots()));
    }

    @Override
    protected PluginDescriptorFinder createPluginDescriptorFinder() {
        return new ModularDescriptorFinder();
    }

    @Override
    protected PluginLoader createPluginLoader() {
        return new ModuleLayerPluginLoader(this);
    }

    @Override
    protected PluginFactory createPluginFactory() {
        return new ModulePluginFactory();
    }

    @Override
    protected ExtensionFinder createExtensionFinder() {
        // Contributions come from ServiceLoader per module layer, not from pf4j's extension index.
        return new ExtensionFinder() {
            @Override
            public <T> List<org.pf4j.ExtensionWrapper<T>> find(Class<T> type) {
                return List.of();
            }

            @Override
            public <T> List<org.pf4j.ExtensionWrapper<T>> find(Class<T> type, String pluginId) {
                return List.of();
            }

            @Override
            public List<org.pf4j.ExtensionWrapper> find(String pluginId) {
                return List.of();
            }

            @Override
            public Set<String> findClassNames(String pluginId) {
                return Set.of();
            }
        };
    }

    // ---- loading ----

    private record Candidate(Path path, PluginDescriptor descriptor) {
    }

    private void fail(String id, Path path, String reason) {
        PluginProblem p = new PluginProblem(id, path, false, reason);
        problems.add(p);
        log.error("{}", p.message());
    }

    @Override
    public void loadPlugins() {
        Path root = getPluginsRoot();
        if (!Files.isDirectory(root)) {
            log.warn("plugins directory {} does not exist: no plugins", root);
            return;
        }
        List<Path> paths = new ArrayList<>(pluginRepository.getPluginPaths());
        paths.sort(Comparator.comparing(p -> p.getFileName().toString()));

        // 1. descriptors, duplicates, deployment choice, platform version
        Map<String, Candidate> candidates = new LinkedHashMap<>();
        for (Path path : paths) {
            PluginDescriptor d;
            try {
                d = getPluginDescriptorFinder().find(path);
                validatePluginDescriptor(d);
            } catch (RuntimeException e) {
                fail(path.getFileName().toString(), path, ModuleLayerPluginLoader.rootMessage(e));
                continue;
            }
            String id = d.getPluginId();
            if (candidates.containsKey(id)) {
                fail(id, path, "another plugin with id '" + id + "' is already installed (" + candidates.get(id).path().getFileName() + ")");
                continue;
            }
            declared.put(id, declaredContributions(path));
            pathsById.put(id, path);
            if (pluginStatusProvider.isPluginDisabled(id)) {
                problems.add(new PluginProblem(id, path, true, "disabled for this deployment (modemu plugins enable " + id + ")"));
                log.info("plugin '{}' is disabled", id);
                continue;
            }
            String requires = d.getRequires() == null ? "*" : d.getRequires().trim();
            if (requires.matches("^\\d+\\.\\d+\\.\\d+$")) {
                requires = ">=" + requires;
            }
            try {
                if (!requires.isEmpty() && !getVersionManager().checkVersionConstraint(getSystemVersion(), requires)) {
                    fail(id, path, "needs platform " + requires + ", this is " + getSystemVersion());
                    continue;
                }
            } catch (RuntimeException e) {
                fail(id, path, "invalid Plugin-Requires '" + d.getRequires() + "': " + e.getMessage());
                continue;
            }
            candidates.put(id, new Candidate(path, d));
        }

        // 2. dependencies: drop plugins whose required dependencies are missing or of the wrong version, repeatedly
        boolean changed = true;
        while (changed) {
            changed = false;
            for (Candidate c : new ArrayList<>(candidates.values())) {
                String reason = unmetDependency(c.descriptor(), candidates);
                if (reason != null) {
                    candidates.remove(c.descriptor().getPluginId());
                    fail(c.descriptor().getPluginId(), c.path(), reason);
                    changed = true;
                }
            }
        }

        // 3. load in dependency order (a cycle leaves its members unordered: they fail)
        List<Candidate> order = topologicalOrder(candidates);
        for (Candidate c : order) {
            String id = c.descriptor().getPluginId();
            String missing = c.descriptor().getDependencies().stream()
                    .filter(dep -> !dep.isOptional() || candidates.containsKey(dep.getPluginId()))
                    .map(PluginDependency::getPluginId)
                    .filter(dep -> !plugins.containsKey(dep))
                    .findFirst().orElse(null);
            if (missing != null) {
                fail(id, c.path(), "needs plugin '" + missing + "', which failed to load");
                continue;
            }
            try {
                PluginWrapper w = loadPluginFromPath(c.path());
                if (w == null) {
                    fail(id, c.path(), "cannot be loaded");
                }
            } catch (RuntimeException | LinkageError e) {
                fail(id, c.path(), ModuleLayerPluginLoader.rootMessage(e));
            }
        }
        resolvePlugins();
    }

    private String unmetDependency(PluginDescriptor d, Map<String, Candidate> candidates) {
        for (PluginDependency dep : d.getDependencies()) {
            Candidate other = candidates.get(dep.getPluginId());
            if (other == null) {
                if (dep.isOptional()) {
                    continue;
                }
                boolean installed = pathsById.containsKey(dep.getPluginId());
                return "needs plugin '" + dep.getPluginId() + "'" + (dep.getPluginVersionSupport().equals("*") ? "" : " " + dep.getPluginVersionSupport())
                        + (installed ? ", which is disabled or failed" : ", which is not installed");
            }
            String want = dep.getPluginVersionSupport();
            String have = other.descriptor().getVersion();
            try {
                if (!"*".equals(want) && !getVersionManager().checkVersionConstraint(have, want)) {
                    return "needs plugin '" + dep.getPluginId() + "' " + want + ", installed is " + have;
                }
            } catch (RuntimeException e) {
                return "invalid version constraint '" + want + "' on plugin '" + dep.getPluginId() + "'";
            }
        }
        return null;
    }

    private List<Candidate> topologicalOrder(Map<String, Candidate> candidates) {
        List<Candidate> out = new ArrayList<>();
        Set<String> done = new HashSet<>();
        boolean progress = true;
        while (progress && done.size() < candidates.size()) {
            progress = false;
            for (Candidate c : candidates.values()) {
                String id = c.descriptor().getPluginId();
                if (done.contains(id)) {
                    continue;
                }
                boolean ready = c.descriptor().getDependencies().stream()
                        .filter(dep -> candidates.containsKey(dep.getPluginId()))
                        .allMatch(dep -> done.contains(dep.getPluginId()));
                if (ready) {
                    out.add(c);
                    done.add(id);
                    progress = true;
                }
            }
        }
        for (Candidate c : candidates.values()) {
            if (!done.contains(c.descriptor().getPluginId())) {
                fail(c.descriptor().getPluginId(), c.path(), "cyclic plugin dependency");
            }
        }
        return out;
    }

    private static List<String> declaredContributions(Path path) {
        try (JarFile jf = new JarFile(ModularDescriptorFinder.pluginJar(path).toFile())) {
            String v = jf.getManifest().getMainAttributes().getValue(CONTRIBUTES);
            return v == null ? List.of() : Stream.of(v.trim().split("[\\s,]+")).filter(s -> !s.isEmpty()).toList();
        } catch (IOException | RuntimeException e) {
            return List.of();
        }
    }

    // ---- starting ----

    @Override
    public void startPlugins() {
        Contributions.Builder registry = Contributions.builder();
        for (PluginWrapper w : new ArrayList<>(resolvedPlugins)) {
            String id = w.getPluginId();
            String notStarted = w.getDescriptor().getDependencies().stream()
                    .filter(dep -> !dep.isOptional() || plugins.containsKey(dep.getPluginId()))
                    .map(PluginDependency::getPluginId)
                    .filter(dep -> getPlugin(dep) == null || getPlugin(dep).getPluginState() != PluginState.STARTED)
                    .findFirst().orElse(null);
            if (notStarted != null) {
                markFailed(w, "needs plugin '" + notStarted + "', which failed to start");
                continue;
            }
            try {
                w.getPlugin().start();
            } catch (Exception | LinkageError e) {
                markFailed(w, "failed to start: " + ModuleLayerPluginLoader.rootMessage(e));
                continue;
            }
            w.setPluginState(PluginState.STARTED);
            startedPlugins.add(w);
            Map<ContributionKind, List<String>> mine;
            try {
                mine = discover(w, registry);
            } catch (ConfigurationException | java.util.ServiceConfigurationError e) {
                stopQuietly(w);
                markFailed(w, e instanceof ConfigurationException ? e.getMessage() : "a service provider cannot be created: " + ModuleLayerPluginLoader.rootMessage(e));
                continue;
            }
            loaded.add(new PluginInfo(id, w.getDescriptor().getVersion(), moduleNames.get(id), w.getPluginPath(),
                    w.getDescriptor().getPluginDescription(), mine));
            log.debug("plugin '{}' {} started (module {})", id, w.getDescriptor().getVersion(), moduleNames.get(id));
        }
        // names that an installed but unavailable plugin would provide
        for (PluginProblem p : problems) {
            for (String c : declared.getOrDefault(p.pluginId(), List.of())) {
                int colon = c.indexOf(':');
                ContributionKind k = colon > 0 ? ContributionKind.fromPrefix(c.substring(0, colon)) : null;
                if (k != null) {
                    registry.unavailable(k, c.substring(colon + 1), "it is provided by plugin '" + p.pluginId() + "', which "
                            + (p.disabled() ? "is disabled (enable it: modemu plugins enable " + p.pluginId() + ")" : "failed to load: " + p.reason()));
                }
            }
        }
        contributions = registry.build();
    }

    private void markFailed(PluginWrapper w, String reason) {
        w.setPluginState(PluginState.FAILED);
        fail(w.getPluginId(), w.getPluginPath(), reason);
    }

    private void stopQuietly(PluginWrapper w) {
        try {
            w.getPlugin().stop();
        } catch (RuntimeException e) {
            log.warn("plugin '{}' failed to stop", w.getPluginId(), e);
        }
        startedPlugins.remove(w);
    }

    /** Finds the plugin's providers in its own layer and adds them to {@code registry}, all or none. */
    private Map<ContributionKind, List<String>> discover(PluginWrapper w, Contributions.Builder registry) {
        ModuleLayer layer = layers.get(w.getPluginId());
        String id = w.getPluginId();
        Map<ContributionKind, List<Object[]>> found = new EnumMap<>(ContributionKind.class);
        collect(layer, DeviceType.class, DeviceType::name, ContributionKind.DEVICE_TYPE, found);
        collect(layer, BlockDriver.class, BlockDriver::name, ContributionKind.BLOCK_DRIVER, found);
        collect(layer, MigrationTransport.class, MigrationTransport::scheme, ContributionKind.MIGRATION_SCHEME, found);
        collect(layer, GuestProgram.class, GuestProgram::name, ContributionKind.GUEST_PROGRAM, found);
        collect(layer, io.modemu.monitor.MonitorCommand.class, io.modemu.monitor.MonitorCommand::name, ContributionKind.MONITOR_COMMAND, found);
        for (Object[] bd : found.getOrDefault(ContributionKind.BLOCK_DRIVER, List.of()).toArray(Object[][]::new)) {
            for (String alias : ((BlockDriver) bd[1]).aliases()) {
                found.get(ContributionKind.BLOCK_DRIVER).add(new Object[] {alias, bd[1]});
            }
        }
        // check every name first so that a conflict rejects the plugin as a whole
        Set<String> seen = new HashSet<>();
        for (var e : found.entrySet()) {
            for (Object[] nv : e.getValue()) {
                String name = (String) nv[0];
                String other = registry.providerOf(e.getKey(), name);
                if (other != null) {
                    throw new ConfigurationException(e.getKey().label() + " '" + name + "' is already provided by plugin '" + other + "'");
                }
                if (!seen.add(e.getKey().prefix() + ":" + name)) {
                    throw new ConfigurationException(e.getKey().label() + " '" + name + "' is provided twice by this plugin");
                }
            }
        }
        Map<ContributionKind, List<String>> names = new EnumMap<>(ContributionKind.class);
        for (var e : found.entrySet()) {
            for (Object[] nv : e.getValue()) {
                registry.add(e.getKey(), (String) nv[0], nv[1], id);
                names.computeIfAbsent(e.getKey(), k -> new ArrayList<>()).add((String) nv[0]);
            }
        }
        return names;
    }

    private static <S> void collect(ModuleLayer layer, Class<S> spi, Function<S, String> name, ContributionKind kind,
                                    Map<ContributionKind, List<Object[]>> out) {
        ServiceLoader.load(layer, spi).stream()
                .filter(p -> p.type().getModule().getLayer() == layer)
                .forEach(p -> {
                    S s = p.get();
                    out.computeIfAbsent(kind, k -> new ArrayList<>()).add(new Object[] {name.apply(s), s});
                });
    }
}
