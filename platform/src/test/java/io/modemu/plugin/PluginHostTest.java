package io.modemu.plugin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.options.ConfigurationException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The plugin host with real plugin jars, compiled and packed by the test and loaded from a plugins directory. */
class PluginHostTest {
    private static final String VERSION = "0.1.0";

    @TempDir
    Path tmp;
    Path plugins;
    PluginJars jars;

    @BeforeEach
    void setUp() throws IOException {
        plugins = Files.createDirectories(tmp.resolve("plugins"));
        jars = new PluginJars(Files.createDirectories(tmp.resolve("work")));
    }

    private Path sharedLibrary(String version) throws IOException {
        return jars.jar("shared-" + version)
                .source("module-info.java", "module com.example.shared { exports com.example.shared; }")
                .source("com/example/shared/Shared.java",
                        "package com.example.shared; public final class Shared { public static String version() { return \"" + version + "\"; } }")
                .writeTo(tmp.resolve("libs-" + version));
    }

    /** A plugin directory: the plugin jar plus lib/ holding its private copy of the shared library. */
    private void pluginWithLibrary(String id, String type, String libVersion) throws IOException {
        Path lib = sharedLibrary(libVersion);
        Path dir = plugins.resolve(id);
        Files.createDirectories(dir.resolve("lib"));
        Files.copy(lib, dir.resolve("lib").resolve(lib.getFileName()));
        String mod = "test." + id;
        jars.jar(id).plugin(id, "1.0.0").attr("Plugin-Requires", ">=0.1.0").against(lib)
                .source("module-info.java", "module " + mod + " { requires io.modemu.platform; requires com.example.shared;"
                        + " provides io.modemu.device.DeviceType with " + mod + ".Type; }")
                .source(mod.replace('.', '/') + "/Type.java",
                        PluginJars.deviceType(mod, "Type", type, "\"uses shared \" + com.example.shared.Shared.version()"))
                .writeTo(dir);
    }

    private Path devicePlugin(String id, String type) throws IOException {
        String mod = "test." + id.replace('-', '_');
        return jars.jar(id).plugin(id, "1.0.0")
                .source("module-info.java", "module " + mod + " { requires io.modemu.platform; provides io.modemu.device.DeviceType with " + mod + ".Type; }")
                .source(mod.replace('.', '/') + "/Type.java", PluginJars.deviceType(mod, "Type", type, "\"" + id + "\""))
                .writeTo(plugins);
    }

    private Path transportPlugin(String id, String scheme) throws IOException {
        String mod = "test." + id.replace('-', '_');
        return jars.jar(id).plugin(id, "1.0.0").attr("Modemu-Contributes", "scheme:" + scheme)
                .source("module-info.java", "module " + mod + " { requires io.modemu.platform; provides io.modemu.migration.MigrationTransport with " + mod + ".T; }")
                .source(mod.replace('.', '/') + "/T.java", PluginJars.transport(mod, "T", scheme))
                .writeTo(plugins);
    }

    private static List<String> ids(PluginHost h) {
        return h.plugins().stream().map(PluginInfo::id).toList();
    }

    private static String problem(PluginHost h, String id) {
        return h.problems().stream().filter(p -> p.pluginId().equals(id)).map(PluginProblem::message).findFirst().orElse(null);
    }

    @Test
    void twoPluginsBundlingDifferentVersionsOfOnePrivateLibraryWorkSideBySide() throws IOException {
        pluginWithLibrary("alpha", "alpha-dev", "1");
        pluginWithLibrary("beta", "beta-dev", "2");
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(h.problems()).isEmpty();
            assertThat(h.contributions().deviceType("alpha-dev").description()).isEqualTo("uses shared 1");
            assertThat(h.contributions().deviceType("beta-dev").description()).isEqualTo("uses shared 2");
            // each plugin is a named module in a layer of its own, whose parent is the platform's layer
            ModuleLayer a = h.layerOf("alpha");
            ModuleLayer b = h.layerOf("beta");
            assertThat(a).isNotSameAs(b);
            assertThat(a.findModule("test.alpha")).isPresent();
            assertThat(a.parents()).contains(PluginHost.class.getModule().getLayer());
            assertThat(a.findModule("com.example.shared").orElseThrow())
                    .isNotSameAs(b.findModule("com.example.shared").orElseThrow());
            PluginInfo alpha = h.plugins().stream().filter(p -> p.id().equals("alpha")).findFirst().orElseThrow();
            assertThat(alpha.moduleName()).isEqualTo("test.alpha");
            assertThat(alpha.version()).isEqualTo("1.0.0");
            assertThat(alpha.contributions().get(ContributionKind.DEVICE_TYPE)).containsExactly("alpha-dev");
        }
    }

    @Test
    void removingAPluginJarRemovesItsFeatureAndNothingElse() throws IOException {
        devicePlugin("one", "dev-one");
        Path two = devicePlugin("two", "dev-two");
        transportPlugin("three", "three");
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("one", "three", "two");
        }
        Files.delete(two);
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("one", "three");
            assertThat(h.problems()).isEmpty();
            assertThat(h.contributions().deviceType("dev-one")).isNotNull();
            assertThat(h.contributions().transport("three")).isNotNull();
            assertThatThrownBy(() -> h.contributions().deviceType("dev-two"))
                    .isInstanceOf(ConfigurationException.class)
                    .hasMessage("no device type 'dev-two': no loaded plugin provides it (available: dev-one)");
        }
    }

    @Test
    void aJarWithoutDescriptorIsReportedAndTheRestLoads() throws IOException {
        devicePlugin("good", "dev-good");
        jars.jar("nodesc").source("module-info.java", "module test.nodesc { requires io.modemu.platform; }").writeTo(plugins);
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("good");
            assertThat(problem(h, "nodesc.jar")).isEqualTo(
                    "plugin 'nodesc.jar' (nodesc.jar): no plugin descriptor: nodesc.jar has no Plugin-Id in META-INF/MANIFEST.MF");
        }
    }

    @Test
    void aJarThatIsNotANamedModuleIsReported() throws IOException {
        devicePlugin("good", "dev-good");
        jars.jar("plain").plugin("plain", "1.0.0")
                .source("plain/Thing.java", "package plain; public class Thing {}")
                .writeTo(plugins);
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("good");
            assertThat(problem(h, "plain")).isEqualTo("plugin 'plain' (plain.jar): not a named module: plain.jar has no module-info.class");
        }
    }

    @Test
    void aModuleThatDoesNotResolveIsReported() throws IOException {
        jars.jar("needy").plugin("needy", "1.0.0").against(sharedLibrary("1"))
                .source("module-info.java", "module test.needy { requires io.modemu.platform; requires com.example.shared; }")
                .writeTo(plugins);
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).isEmpty();
            assertThat(problem(h, "needy")).startsWith("plugin 'needy' (needy.jar): module 'test.needy' does not resolve: ")
                    .contains("com.example.shared");
        }
    }

    @Test
    void anUnmetDependencyIsReportedAndDependentsOfItToo() throws IOException {
        devicePlugin("good", "dev-good");
        jars.jar("orphan").plugin("orphan", "1.0.0").attr("Plugin-Dependencies", "missing-base@>=1.0.0")
                .source("module-info.java", "module test.orphan { requires io.modemu.platform; }").writeTo(plugins);
        jars.jar("grandchild").plugin("grandchild", "1.0.0").attr("Plugin-Dependencies", "orphan")
                .source("module-info.java", "module test.grandchild { requires io.modemu.platform; }").writeTo(plugins);
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("good");
            assertThat(problem(h, "orphan")).isEqualTo("plugin 'orphan' (orphan.jar): needs plugin 'missing-base' >=1.0.0, which is not installed");
            assertThat(problem(h, "grandchild")).isEqualTo("plugin 'grandchild' (grandchild.jar): needs plugin 'orphan', which is disabled or failed");
        }
    }

    @Test
    void aDependencyOfTheWrongVersionIsReported() throws IOException {
        devicePlugin("base", "dev-base");
        jars.jar("picky").plugin("picky", "1.0.0").attr("Plugin-Dependencies", "base@>=2.0.0")
                .source("module-info.java", "module test.picky { requires io.modemu.platform; }").writeTo(plugins);
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("base");
            assertThat(problem(h, "picky")).isEqualTo("plugin 'picky' (picky.jar): needs plugin 'base' >=2.0.0, installed is 1.0.0");
        }
    }

    @Test
    void aPluginNeedingANewerPlatformIsReportedWithBothVersions() throws IOException {
        devicePlugin("good", "dev-good");
        jars.jar("future").plugin("future", "1.0.0").attr("Plugin-Requires", ">=2.0.0")
                .source("module-info.java", "module test.future { requires io.modemu.platform; }").writeTo(plugins);
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("good");
            assertThat(problem(h, "future")).isEqualTo("plugin 'future' (future.jar): needs platform >=2.0.0, this is 0.1.0");
        }
    }

    @Test
    void anExactRequiresMeansAtLeastThatVersion() throws IOException {
        jars.jar("exact").plugin("exact", "1.0.0").attr("Plugin-Requires", "0.0.9")
                .source("module-info.java", "module test.exact { requires io.modemu.platform; }").writeTo(plugins);
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("exact");
        }
    }

    @Test
    void aPluginWhoseStartThrowsIsReportedAndItsContributionsAreAbsent() throws IOException {
        devicePlugin("good", "dev-good");
        jars.jar("crashy").plugin("crashy", "1.0.0").attr("Plugin-Class", "test.crashy.Life")
                .source("module-info.java", "module test.crashy { requires io.modemu.platform; requires org.pf4j;"
                        + " exports test.crashy to io.modemu.platform; provides io.modemu.device.DeviceType with test.crashy.Type; }")
                .source("test/crashy/Life.java", "package test.crashy; public class Life extends org.pf4j.Plugin {"
                        + " public void start() { throw new IllegalStateException(\"no licence key\"); } }")
                .source("test/crashy/Type.java", PluginJars.deviceType("test.crashy", "Type", "dev-crashy", "\"crashy\""))
                .writeTo(plugins);
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("good");
            assertThat(problem(h, "crashy")).isEqualTo("plugin 'crashy' (crashy.jar): failed to start: no licence key");
            assertThatThrownBy(() -> h.contributions().deviceType("dev-crashy"))
                    .hasMessageStartingWith("no device type 'dev-crashy'");
        }
    }

    @Test
    void twoPluginsClaimingOneDeviceTypeLeaveTheFirstAndRejectTheSecond() throws IOException {
        devicePlugin("aaa", "shared-dev");
        devicePlugin("bbb", "shared-dev");
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("aaa");
            assertThat(problem(h, "bbb")).isEqualTo("plugin 'bbb' (bbb.jar): device type 'shared-dev' is already provided by plugin 'aaa'");
            assertThat(h.contributions().deviceType("shared-dev").description()).isEqualTo("aaa");
        }
    }

    @Test
    void twoPluginsClaimingOneUriSchemeLeaveTheFirstAndRejectTheSecond() throws IOException {
        transportPlugin("tcp-a", "tcp");
        transportPlugin("tcp-b", "tcp");
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("tcp-a");
            assertThat(problem(h, "tcp-b")).isEqualTo("plugin 'tcp-b' (tcp-b.jar): migration scheme 'tcp' is already provided by plugin 'tcp-a'");
        }
    }

    @Test
    void aPluginSeesTheExportedClassesOfThePluginItDependsOn() throws IOException {
        Path base = jars.jar("base").plugin("base", "1.2.0")
                .source("module-info.java", "module test.base { requires io.modemu.platform; exports test.base.api; }")
                .source("test/base/api/Greeting.java", "package test.base.api; public final class Greeting { public static String text() { return \"from base\"; } }")
                .writeTo(plugins);
        jars.jar("child").plugin("child", "1.0.0").attr("Plugin-Dependencies", "base@>=1.0.0").against(base)
                .source("module-info.java", "module test.child { requires io.modemu.platform; requires test.base;"
                        + " provides io.modemu.device.DeviceType with test.child.Type; }")
                .source("test/child/Type.java", PluginJars.deviceType("test.child", "Type", "dev-child", "test.base.api.Greeting.text()"))
                .writeTo(plugins);
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(h.problems()).isEmpty();
            assertThat(ids(h)).containsExactly("base", "child");
            assertThat(h.contributions().deviceType("dev-child").description()).isEqualTo("from base");
            assertThat(h.layerOf("child").parents()).contains(h.layerOf("base"));
            // the base plugin's own providers are not counted twice through the child's layer
            assertThat(h.plugins().get(0).contributions()).isEmpty();
        }
    }

    @Test
    void disabledTxtAndEnabledTxtChoosePluginsPerDeployment() throws IOException {
        devicePlugin("one", "dev-one");
        transportPlugin("two", "two");
        PluginHost.disable(plugins, "two");
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("one");
            PluginProblem p = h.problems().getFirst();
            assertThat(p.disabled()).isTrue();
            assertThat(p.pluginId()).isEqualTo("two");
            // a name from the disabled plugin says which plugin provides it and how to get it back
            assertThatThrownBy(() -> h.contributions().transport("two"))
                    .hasMessage("no migration scheme 'two': it is provided by plugin 'two', which is disabled (enable it: modemu plugins enable two)");
        }
        PluginHost.enable(plugins, "two");
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("one", "two");
        }
        // a non-empty enabled.txt means: only these
        Files.writeString(plugins.resolve("enabled.txt"), "# chosen for this host\none\n");
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("one");
        }
        PluginHost.enable(plugins, "two");
        PluginHost.disable(plugins, "one");
        try (PluginHost h = PluginHost.load(plugins, VERSION)) {
            assertThat(ids(h)).containsExactly("two");
        }
    }

    @Test
    void aMissingPluginsDirectoryMeansNoPlugins() {
        try (PluginHost h = PluginHost.load(tmp.resolve("nope"), VERSION)) {
            assertThat(h.plugins()).isEmpty();
            assertThat(h.problems()).isEmpty();
        }
    }
}
