package io.modemu.plugin.internal;

import org.pf4j.Plugin;
import org.pf4j.PluginFactory;
import org.pf4j.PluginRuntimeException;
import org.pf4j.PluginWrapper;

/**
 * Creates a plugin's lifecycle object ({@code Plugin-Class}, optional) from its module. A plugin
 * without one gets a plain {@link Plugin}. The class's package must be exported to the platform.
 */
final class ModulePluginFactory implements PluginFactory {
    @Override
    public Plugin create(PluginWrapper wrapper) {
        String className = wrapper.getDescriptor().getPluginClass();
        if (className == null || className.isBlank()) {
            return new Plugin();
        }
        Class<?> c;
        try {
            c = wrapper.getPluginClassLoader().loadClass(className);
        } catch (ClassNotFoundException | LinkageError e) {
            throw new PluginRuntimeException("Plugin-Class " + className + " not found in the plugin");
        }
        if (!Plugin.class.isAssignableFrom(c)) {
            throw new PluginRuntimeException("Plugin-Class " + className + " does not extend org.pf4j.Plugin");
        }
        if (!c.getModule().isExported(c.getPackageName(), ModulePluginFactory.class.getModule())) {
            throw new PluginRuntimeException("Plugin-Class " + className + ": module " + c.getModule().getName()
                    + " must export package " + c.getPackageName() + " to io.modemu.platform");
        }
        try {
            return (Plugin) c.getConstructor().newInstance();
        } catch (ReflectiveOperationException | RuntimeException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new PluginRuntimeException("Plugin-Class " + className + " cannot be created: " + cause);
        }
    }
}
