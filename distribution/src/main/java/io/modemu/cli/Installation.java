package io.modemu.cli;

import java.nio.file.Path;

/** Where an installation keeps its parts ({@code modemu.home} is set by bin/modemu). */
final class Installation {
    private Installation() {
    }

    /** The plugins directory: {@code --plugins-dir}, else $MODEMU_PLUGINS, else MODEMU_HOME/plugins. */
    static Path pluginsDir(Path override) {
        if (override != null) {
            return override;
        }
        String env = System.getenv("MODEMU_PLUGINS");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        String home = System.getProperty("modemu.home");
        return home != null ? Path.of(home, "plugins") : Path.of("plugins");
    }
}
