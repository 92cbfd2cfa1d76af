package io.modemu.block;

import io.modemu.options.Options;
import java.util.List;

/**
 * A block driver a plugin contributes (found with {@link java.util.ServiceLoader}): opens nodes from
 * {@code -drive} / {@code -blockdev} options.
 */
public interface BlockDriver {
    /** The driver name, as in {@code -blockdev driver=NAME} (for example {@code file}, {@code null-co}). */
    String name();

    /** Other names the driver answers to. */
    default List<String> aliases() {
        return List.of();
    }

    /** One line for {@code modemu plugins}. */
    String description();

    /**
     * Opens a node. Runs on the main loop. Reads every option it understands from {@code options}
     * (unread ones are rejected by the caller; {@code read-only} is always offered) and throws
     * {@link io.modemu.options.ConfigurationException} naming the culprit for bad options, a missing
     * or unreadable file, and the like.
     */
    BlockNode open(Options options);
}
