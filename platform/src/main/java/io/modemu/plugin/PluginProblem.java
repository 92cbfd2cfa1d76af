package io.modemu.plugin;

import java.nio.file.Path;

/**
 * A plugin that did not load, or was left out on purpose.
 *
 * @param pluginId the plugin's id, or its file name when it has no readable descriptor
 * @param disabled true when the deployment disabled it (enabled.txt / disabled.txt), false when it failed
 * @param reason   one line: why
 */
public record PluginProblem(String pluginId, Path path, boolean disabled, String reason) {
    /** One line naming the plugin and the reason, as printed to users. */
    public String message() {
        return "plugin '" + pluginId + "' (" + path.getFileName() + "): " + reason;
    }
}
