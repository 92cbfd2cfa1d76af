package io.modemu.platform.internal;

import com.google.inject.AbstractModule;
import com.google.inject.Provides;
import com.google.inject.Singleton;
import io.modemu.platform.PlatformSettings;
import io.modemu.platform.PlatformVersion;
import io.modemu.plugin.Contributions;
import io.modemu.plugin.PluginHost;

/** Guice wiring of the platform: explicit bindings only. */
public final class PlatformModule extends AbstractModule {
    private final PlatformSettings settings;

    public PlatformModule(PlatformSettings settings) {
        this.settings = settings;
    }

    @Override
    protected void configure() {
        binder().requireExplicitBindings();
        bind(PlatformSettings.class).toInstance(settings);
    }

    @Provides
    @Singleton
    PluginHost pluginHost(PlatformSettings s) {
        return PluginHost.load(s.pluginsDir(), PlatformVersion.get());
    }

    @Provides
    @Singleton
    Contributions contributions(PluginHost host) {
        return host.contributions();
    }
}
