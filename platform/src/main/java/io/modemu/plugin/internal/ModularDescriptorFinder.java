package io.modemu.plugin.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.JarFile;
import java.util.jar.Manifest;
import java.util.stream.Stream;
import org.pf4j.ManifestPluginDescriptorFinder;
import org.pf4j.PluginRuntimeException;

/**
 * Reads a plugin's pf4j descriptor from the manifest of its jar. A plugin is either one jar in the
 * plugins directory, or a directory holding the plugin jar (the one whose manifest has
 * {@code Plugin-Id}) next to a {@code lib/} folder of private libraries.
 */
final class ModularDescriptorFinder extends ManifestPluginDescriptorFinder {
    @Override
    public boolean isApplicable(Path pluginPath) {
        return Files.exists(pluginPath);
    }

    @Override
    protected Manifest readManifest(Path pluginPath) {
        Path jar = pluginJar(pluginPath);
        try (JarFile jf = new JarFile(jar.toFile())) {
            Manifest m = jf.getManifest();
            if (m == null || m.getMainAttributes().getValue(PLUGIN_ID) == null) {
                throw new PluginRuntimeException("no plugin descriptor: " + jar.getFileName() + " has no Plugin-Id in META-INF/MANIFEST.MF");
            }
            return m;
        } catch (IOException e) {
            throw new PluginRuntimeException("not a readable jar: " + jar.getFileName() + " (" + e.getMessage() + ")");
        }
    }

    /** The jar that carries the descriptor and the plugin's own module. */
    static Path pluginJar(Path pluginPath) {
        if (!Files.isDirectory(pluginPath)) {
            return pluginPath;
        }
        List<Path> jars;
        try (Stream<Path> s = Files.list(pluginPath)) {
            jars = s.filter(p -> p.getFileName().toString().endsWith(".jar")).sorted().toList();
        } catch (IOException e) {
            throw new PluginRuntimeException("cannot list plugin directory " + pluginPath + ": " + e.getMessage());
        }
        for (Path j : jars) {
            try (JarFile jf = new JarFile(j.toFile())) {
                Manifest m = jf.getManifest();
                if (m != null && m.getMainAttributes().getValue(PLUGIN_ID) != null) {
                    return j;
                }
            } catch (IOException e) {
                // not a readable jar: not the plugin jar
            }
        }
        throw new PluginRuntimeException("no plugin descriptor: no jar in directory " + pluginPath.getFileName() + " has Plugin-Id in its manifest");
    }

    /** Every jar that goes on the plugin's module path: the plugin jar, its siblings, and lib/*.jar. */
    static List<Path> modulePath(Path pluginPath) {
        if (!Files.isDirectory(pluginPath)) {
            return List.of(pluginPath);
        }
        try (Stream<Path> top = Files.list(pluginPath)) {
            Stream<Path> lib = Files.isDirectory(pluginPath.resolve("lib")) ? Files.list(pluginPath.resolve("lib")) : Stream.empty();
            try (lib) {
                return Stream.concat(top, lib).filter(p -> p.getFileName().toString().endsWith(".jar")).sorted().toList();
            }
        } catch (IOException e) {
            throw new PluginRuntimeException("cannot list plugin directory " + pluginPath + ": " + e.getMessage());
        }
    }
}
