package io.modemu.plugin;

/** The kinds of things a plugin contributes, with the manifest prefix used in {@code Modemu-Contributes}. */
public enum ContributionKind {
    DEVICE_TYPE("device", "device type"),
    BLOCK_DRIVER("block", "block driver"),
    MIGRATION_SCHEME("scheme", "migration scheme"),
    GUEST_PROGRAM("guest", "guest program"),
    MONITOR_COMMAND("qmp", "QMP command");

    private final String prefix;
    private final String label;

    ContributionKind(String prefix, String label) {
        this.prefix = prefix;
        this.label = label;
    }

    /** Prefix in the {@code Modemu-Contributes} manifest attribute, for example {@code device}. */
    public String prefix() {
        return prefix;
    }

    /** For messages, for example {@code device type}. */
    public String label() {
        return label;
    }

    public static ContributionKind fromPrefix(String p) {
        for (ContributionKind k : values()) {
            if (k.prefix.equals(p)) {
                return k;
            }
        }
        return null;
    }
}
