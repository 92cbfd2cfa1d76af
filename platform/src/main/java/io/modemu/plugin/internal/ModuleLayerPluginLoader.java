package io.modemu.plugin.internal;

import java.lang.module.Configuration;
import java.lang.module.FindException;
import java.lang.module.ModuleFinder;
import java.lang.module.ModuleReference;
import java.lang.module.ResolutionException;
import java.lang.LayerInstantiationException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.pf4j.PluginDependency;
import org.pf4j.PluginDescriptor;
import org.pf4j.PluginLoader;
import org.pf4j.PluginRuntimeException;

/**
 * The bridge between pf4j and JPMS: instead of pf4j's class loader (which loads plugins as unnamed
 * modules), defines the plugin's module and its private libraries in a new {@link ModuleLayer}
 * whose parents are the platform's layer and the layers of the plugins it depends on, and hands
 * pf4j that layer's class loader.
 */
final class ModuleLayerPluginLoader implements PluginLoader {
    private final ModularPluginManager manager;

    ModuleLayerPluginLoader(ModularPluginManager manager) {
        this.manager = manager;
    }

    @Override
    public boolean isApplicable(Path pluginPath) {
        return true;
    }

    @Override
    public ClassLoader loadPlugin(Path pluginPath, PluginDescriptor descriptor) {
        String id = descriptor.getPluginId();
        Path mainJar = ModularDescriptorFinder.pluginJar(pluginPath);
        ModuleReference main;
        try {
            var refs = ModuleFinder.of(mainJar).findAll();
            if (refs.size() != 1) {
                throw new PluginRuntimeException("not a valid module: " + mainJar.getFileName());
            }
            main = refs.iterator().next();
        } catch (FindException e) {
            throw new PluginRuntimeException("not a valid module: " + mainJar.getFileName() + ": " + rootMessage(e));
        }
        if (main.descriptor().isAutomatic()) {
            throw new PluginRuntimeException("not a named module: " + mainJar.getFileName() + " has no module-info.class");
        }
        String moduleName = main.descriptor().name();

        List<ModuleLayer> parents = new ArrayList<>();
        parents.add(manager.platformLayer());
        for (PluginDependency dep : descriptor.getDependencies()) {
            ModuleLayer l = manager.layerOfOrNull(dep.getPluginId());
            if (l != null) {
                parents.add(l);
            }
        }
        try {
            ModuleFinder finder = ModuleFinder.of(ModularDescriptorFinder.modulePath(pluginPath).toArray(Path[]::new));
            Configuration cf = Configuration.resolve(finder, parents.stream().map(ModuleLayer::configuration).toList(),
                    ModuleFinder.of(), Set.of(moduleName));
            ModuleLayer layer = ModuleLayer.defineModulesWithOneLoader(cf, parents, ModuleLayerPluginLoader.class.getClassLoader()).layer();
            manager.registerLayer(id, moduleName, layer);
            return layer.findLoader(moduleName);
        } catch (FindException | ResolutionException | LayerInstantiationException e) {
            throw new PluginRuntimeException("module '" + moduleName + "' does not resolve: " + rootMessage(e));
        }
    }

    static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        String m = c.getMessage() != null ? c.getMessage() : c.getClass().getSimpleName();
        return m.replace('\n', ' ');
    }
}
