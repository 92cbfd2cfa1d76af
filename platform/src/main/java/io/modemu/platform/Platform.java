package io.modemu.platform;

import com.google.inject.Guice;
import com.google.inject.Injector;
import com.google.inject.Stage;
import io.modemu.platform.internal.PlatformModule;
import io.modemu.plugin.Contributions;
import io.modemu.plugin.PluginHost;

/**
 * The platform, booted: the plugin host and what the plugins contribute, wired with Guice. One per
 * process. The injector has explicit bindings only (no just-in-time bindings that would pin plugin
 * classes in the root injector); plugin contributions never pass through Guice, they come from
 * ServiceLoader per plugin layer.
 */
public final class Platform implements AutoCloseable {
    private final Injector injector;

    private Platform(Injector injector) {
        this.injector = injector;
    }

    /** Loads the plugins of {@code settings.pluginsDir()} and wires the platform. */
    public static Platform boot(PlatformSettings settings) {
        if (!"CHILD".equals(System.getProperty("guice_custom_class_loading"))) {
            // Guice otherwise defines generated classes in a bridge loader that pins plugin classes
            System.setProperty("guice_custom_class_loading", "CHILD");
        }
        return new Platform(Guice.createInjector(Stage.PRODUCTION, new PlatformModule(settings)));
    }

    public PluginHost plugins() {
        return injector.getInstance(PluginHost.class);
    }

    public Contributions contributions() {
        return injector.getInstance(Contributions.class);
    }

    public String version() {
        return PlatformVersion.get();
    }

    @Override
    public void close() {
        plugins().close();
    }
}
