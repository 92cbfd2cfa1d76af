package io.modemu.plugin;

import io.modemu.plugin.internal.ModularPluginManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.nio.file.Files;
import java.util.ArrayList;

/**
 * Loads the plugins of one plugins directory: each a pf4j plugin (manifest {@code Plugin-Id},
 * {@code Plugin-Version}, {@code Plugin-Requires}, {@code Plugin-Dependencies}) and a named JPMS
 * module, loaded into its own {@link ModuleLayer} whose parents are the platform's layer and the
 * layers of the plugins it depends on. Contributions are found with
 * {@code ServiceLoader.load(layer, Spi.class)}.
 *
 * <p>A plugin that cannot load (no descriptor, not a named module, an unmet dependency, a platform
 * too old, a start that throws, a name another plugin already claims) is reported in
 * {@link #problems()} with its id and reason; the others still load. {@code enabled.txt} and
 * {@code disabled.txt} in the directory choose plugins per deployment.
 */
public final class PluginHost implements AutoCloseable {
    private final ModularPluginManager manager;

    private PluginHost(ModularPluginManager manager) {
        this.manager = manager;
    }

    /**
     * Loads and starts every enabled plugin in {@code pluginsDir}.
     *
     * @param platformVersion the version {@code Plugin-Requires} is checked against
     * @throws IllegalStateException if the platform itself is not a named module (it must run on the module path)
     */
    public static PluginHost load(Path pluginsDir, String platformVersion) {
        ModuleLayer platformLayer = PluginHost.class.getModule().getLayer();
        if (!PluginHost.class.getModule().isNamed() || platformLayer == null) {
            throw new IllegalStateException("the Modemu platform runs on the class path; plugins need it on the module path (java --module-path ...)");
        }
        ModularPluginManager m = new ModularPluginManager(pluginsDir, platformVersion, platformLayer);
        m.loadPlugins();
        m.startPlugins();
        return new PluginHost(m);
    }

    /** Plugins that loaded and started, in load order. */
    public List<PluginInfo> plugins() {
        return manager.loaded();
    }

    /** Plugins that failed or are disabled, each with its reason. */
    public List<PluginProblem> problems() {
        return manager.problems();
    }

    /** What the loaded plugins contribute. */
    public Contributions contributions() {
        return manager.contributions();
    }

    /** The module layer of a loaded plugin. */
    public ModuleLayer layerOf(String pluginId) {
        return manager.layerOf(pluginId);
    }

    /** Stops every plugin in reverse load order. */
    @Override
    public void close() {
        manager.stopPlugins();
    }

    /**
     * Enables {@code pluginId} for the deployment in {@code pluginsDir}: removes it from disabled.txt
     * and, when enabled.txt lists plugins (then only those load), adds it there.
     */
    public static void enable(Path pluginsDir, String pluginId) {
        editList(pluginsDir.resolve("disabled.txt"), pluginId, false, false);
        editList(pluginsDir.resolve("enabled.txt"), pluginId, true, true);
    }

    /** Disables {@code pluginId}: adds it to disabled.txt and removes it from enabled.txt. */
    public static void disable(Path pluginsDir, String pluginId) {
        editList(pluginsDir.resolve("enabled.txt"), pluginId, false, false);
        editList(pluginsDir.resolve("disabled.txt"), pluginId, true, false);
    }

    private static void editList(Path file, String id, boolean add, boolean onlyIfNonEmpty) {
        try {
            List<String> lines = Files.exists(file) ? new ArrayList<>(Files.readAllLines(file)) : new ArrayList<>();
            boolean listsAny = lines.stream().anyMatch(l -> !l.isBlank() && !l.trim().startsWith("#"));
            boolean present = lines.stream().anyMatch(l -> l.trim().equals(id));
            if (add && !present && (!onlyIfNonEmpty || listsAny)) {
                lines.add(id);
            } else if (!add && present) {
                lines.removeIf(l -> l.trim().equals(id));
            } else {
                return;
            }
            Files.write(file, lines);
        } catch (IOException e) {
            throw new UncheckedIOException(new IOException("cannot update " + file + ": " + e.getMessage(), e));
        }
    }
}
