package io.modemu.platform;

import java.nio.file.Path;

/**
 * How a platform instance is set up.
 *
 * @param pluginsDir the plugins directory (jars and plugin folders, enabled.txt / disabled.txt)
 */
public record PlatformSettings(Path pluginsDir) {
}
