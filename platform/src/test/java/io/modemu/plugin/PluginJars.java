package io.modemu.plugin;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.module.ResolvedModule;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.spi.ToolProvider;
import java.util.stream.Stream;

/**
 * Builds real plugin jars inside a test: compiles Java sources with javac against the platform
 * module (as found in the test JVM's boot layer) and packs them with a pf4j manifest.
 */
final class PluginJars {
    private final Path work;

    PluginJars(Path work) {
        this.work = work;
    }

    /** A jar under construction: sources by relative path, manifest attributes. */
    final class Jar {
        final String name;
        final Map<String, String> sources = new LinkedHashMap<>();
        final Map<String, String> manifest = new LinkedHashMap<>();
        final List<Path> modulePath = new ArrayList<>();

        Jar(String name) {
            this.name = name;
        }

        Jar source(String path, String code) {
            sources.put(path, code);
            return this;
        }

        Jar attr(String key, String value) {
            manifest.put(key, value);
            return this;
        }

        /** Makes it a pf4j plugin. */
        Jar plugin(String id, String version) {
            attr("Plugin-Id", id);
            attr("Plugin-Version", version);
            return this;
        }

        Jar against(Path jar) {
            modulePath.add(jar);
            return this;
        }

        /** Compiles and writes the jar to {@code dir}; returns its path. */
        Path writeTo(Path dir) throws IOException {
            Path src = Files.createTempDirectory(work, name + "-src");
            Path classes = Files.createTempDirectory(work, name + "-classes");
            List<String> args = new ArrayList<>(List.of("--release", "25", "-nowarn", "-d", classes.toString()));
            List<Path> mp = new ArrayList<>(platformModulePath());
            mp.addAll(modulePath);
            args.add("--module-path");
            args.add(String.join(java.io.File.pathSeparator, mp.stream().map(Path::toString).toList()));
            for (var e : sources.entrySet()) {
                Path f = src.resolve(e.getKey());
                Files.createDirectories(f.getParent() == null ? src : f.getParent());
                Files.writeString(f, e.getValue());
                args.add(f.toString());
            }
            if (!sources.isEmpty()) {
                javac(args);
            }
            Files.createDirectories(dir);
            Path jar = dir.resolve(name + ".jar");
            Manifest m = new Manifest();
            m.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
            manifest.forEach((k, v) -> m.getMainAttributes().putValue(k, v));
            try (OutputStream os = Files.newOutputStream(jar); JarOutputStream jos = new JarOutputStream(os, m);
                 Stream<Path> files = Files.walk(classes)) {
                for (Path p : files.filter(Files::isRegularFile).sorted().toList()) {
                    jos.putNextEntry(new JarEntry(classes.relativize(p).toString().replace('\\', '/')));
                    jos.write(Files.readAllBytes(p));
                    jos.closeEntry();
                }
            }
            return jar;
        }
    }

    Jar jar(String name) {
        return new Jar(name);
    }

    private static void javac(List<String> args) {
        ToolProvider javac = ToolProvider.findFirst("javac").orElseThrow(() -> new IllegalStateException("javac not available in the test JVM"));
        StringWriter out = new StringWriter();
        int rc = javac.run(new PrintWriter(out), new PrintWriter(out), args.toArray(String[]::new));
        if (rc != 0) {
            throw new IllegalStateException("javac failed (" + rc + "):\n" + out);
        }
    }

    /** Locations of the named modules of the boot layer (the platform and its dependencies). */
    static List<Path> platformModulePath() {
        return ModuleLayer.boot().configuration().modules().stream()
                .map(ResolvedModule::reference)
                .map(r -> r.location())
                .flatMap(Optional::stream)
                .filter(u -> "file".equals(u.getScheme()))
                .map(Path::of)
                .distinct()
                .toList();
    }

    /** Source of a device type plugin class whose description is {@code description}. */
    static String deviceType(String pkg, String cls, String typeName, String descriptionExpr) {
        return """
                package %s;
                public final class %s implements io.modemu.device.DeviceType {
                    public String name() { return "%s"; }
                    public String description() { return %s; }
                    public io.modemu.device.Device create(io.modemu.machine.Machine m, String id, io.modemu.options.Options o) {
                        return new io.modemu.device.Device() {
                            public String id() { return id; }
                            public String typeName() { return "%s"; }
                        };
                    }
                }
                """.formatted(pkg, cls, typeName, descriptionExpr, typeName);
    }

    /** Source of a migration transport class for {@code scheme} that refuses to connect. */
    static String transport(String pkg, String cls, String scheme) {
        return """
                package %s;
                public final class %s implements io.modemu.migration.MigrationTransport {
                    public String scheme() { return "%s"; }
                    public String description() { return "test transport"; }
                    public io.modemu.migration.MigrationChannel connect(String a, io.modemu.migration.ChannelSettings s) throws java.io.IOException {
                        throw new java.io.IOException("test transport: cannot connect to " + a);
                    }
                    public io.modemu.migration.MigrationListener listen(String a, io.modemu.migration.ChannelSettings s) throws java.io.IOException {
                        throw new java.io.IOException("test transport: cannot listen on " + a);
                    }
                }
                """.formatted(pkg, cls, scheme);
    }
}
