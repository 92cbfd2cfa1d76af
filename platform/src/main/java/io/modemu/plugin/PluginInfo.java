package io.modemu.plugin;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A plugin that loaded and started.
 *
 * @param contributions names by kind (device types, block drivers, migration schemes, guest programs)
 */
public record PluginInfo(String id, String version, String moduleName, Path path, String description,
                         Map<ContributionKind, List<String>> contributions) {
}
