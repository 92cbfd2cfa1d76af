package io.modemu.plugin;

import io.modemu.block.BlockDriver;
import io.modemu.device.DeviceType;
import io.modemu.guest.GuestProgram;
import io.modemu.migration.MigrationTransport;
import io.modemu.options.ConfigurationException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What the loaded plugins contribute, by kind and name: the registry a machine looks up
 * {@code -device}, {@code -drive}, migration URIs and {@code -guest} in.
 *
 * <p>A lookup that finds nothing says which plugin would provide the name when one is installed but
 * disabled or failed. Immutable once built; thread-safe. Tests and embedders build one directly
 * with {@link #builder()}, without a plugin host.
 */
public final class Contributions {
    /** One contribution: its kind, name, implementation and the plugin that provides it. */
    public record Entry(ContributionKind kind, String name, Object implementation, String pluginId) {
    }

    private final Map<ContributionKind, Map<String, Entry>> byKind;
    private final Map<String, String> unavailable;

    private Contributions(Map<ContributionKind, Map<String, Entry>> byKind, Map<String, String> unavailable) {
        this.byKind = byKind;
        this.unavailable = unavailable;
    }

    public static Builder builder() {
        return new Builder();
    }

    public DeviceType deviceType(String name) {
        return (DeviceType) require(ContributionKind.DEVICE_TYPE, name).implementation();
    }

    public BlockDriver blockDriver(String name) {
        return (BlockDriver) require(ContributionKind.BLOCK_DRIVER, name).implementation();
    }

    public MigrationTransport transport(String scheme) {
        return (MigrationTransport) require(ContributionKind.MIGRATION_SCHEME, scheme).implementation();
    }

    public GuestProgram guestProgram(String name) {
        return (GuestProgram) require(ContributionKind.GUEST_PROGRAM, name).implementation();
    }

    /** The QMP commands plugins add. */
    public List<io.modemu.monitor.MonitorCommand> monitorCommands() {
        return byKind.get(ContributionKind.MONITOR_COMMAND).values().stream()
                .map(e -> (io.modemu.monitor.MonitorCommand) e.implementation()).toList();
    }

    public boolean has(ContributionKind kind, String name) {
        return byKind.get(kind).containsKey(name);
    }

    /** The names of one kind, sorted. */
    public List<String> names(ContributionKind kind) {
        return new ArrayList<>(new TreeMap<>(byKind.get(kind)).keySet());
    }

    /** Every entry of one kind, by name. */
    public Map<String, Entry> entries(ContributionKind kind) {
        return Collections.unmodifiableMap(byKind.get(kind));
    }

    /**
     * Looks a name up.
     *
     * @throws ConfigurationException naming what is missing, what exists, and which installed plugin would provide it
     */
    public Entry require(ContributionKind kind, String name) {
        Entry e = byKind.get(kind).get(name);
        if (e != null) {
            return e;
        }
        String why = unavailable.get(kind.prefix() + ":" + name);
        if (why != null) {
            throw new ConfigurationException("no " + kind.label() + " '" + name + "': " + why);
        }
        List<String> known = names(kind);
        throw new ConfigurationException("no " + kind.label() + " '" + name + "': no loaded plugin provides it"
                + (known.isEmpty() ? "" : " (available: " + String.join(", ", known) + ")"));
    }

    /** Builds a registry; the first provider of a name wins, a second one is rejected. */
    public static final class Builder {
        private final Map<ContributionKind, Map<String, Entry>> byKind = new EnumMap<>(ContributionKind.class);
        private final Map<String, String> unavailable = new LinkedHashMap<>();

        Builder() {
            for (ContributionKind k : ContributionKind.values()) {
                byKind.put(k, new LinkedHashMap<>());
            }
        }

        /** The plugin id that already provides {@code kind:name}, or null. */
        public String providerOf(ContributionKind kind, String name) {
            Entry e = byKind.get(kind).get(name);
            return e == null ? null : e.pluginId();
        }

        public Builder add(ContributionKind kind, String name, Object implementation, String pluginId) {
            String existing = providerOf(kind, name);
            if (existing != null) {
                throw new ConfigurationException(kind.label() + " '" + name + "' is provided by both plugin '" + existing
                        + "' and plugin '" + pluginId + "'");
            }
            byKind.get(kind).put(name, new Entry(kind, name, implementation, pluginId));
            return this;
        }

        public Builder add(DeviceType t) {
            return add(ContributionKind.DEVICE_TYPE, t.name(), t, "(built in)");
        }

        public Builder add(BlockDriver d) {
            add(ContributionKind.BLOCK_DRIVER, d.name(), d, "(built in)");
            for (String a : d.aliases()) {
                add(ContributionKind.BLOCK_DRIVER, a, d, "(built in)");
            }
            return this;
        }

        public Builder add(MigrationTransport t) {
            return add(ContributionKind.MIGRATION_SCHEME, t.scheme(), t, "(built in)");
        }

        public Builder add(GuestProgram g) {
            return add(ContributionKind.GUEST_PROGRAM, g.name(), g, "(built in)");
        }

        /** Records that {@code kind:name} would come from a plugin that is not available, and why. */
        public Builder unavailable(ContributionKind kind, String name, String why) {
            unavailable.putIfAbsent(kind.prefix() + ":" + name, why);
            return this;
        }

        public Contributions build() {
            Map<ContributionKind, Map<String, Entry>> copy = new EnumMap<>(ContributionKind.class);
            byKind.forEach((k, v) -> copy.put(k, Collections.unmodifiableMap(new LinkedHashMap<>(v))));
            return new Contributions(copy, Map.copyOf(unavailable));
        }
    }
}
