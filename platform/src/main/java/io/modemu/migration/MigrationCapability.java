package io.modemu.migration;

import java.util.Locale;

/** The migration capabilities Modemu supports, with QEMU's names (migrate-set-capabilities). */
public enum MigrationCapability {
    /** Throttle the vCPUs while the guest dirties memory faster than it can be sent. */
    AUTO_CONVERGE,
    /** Send pages over {@code multifd-channels} parallel connections. */
    MULTIFD;

    /** QEMU's name, for example {@code auto-converge}. */
    public String qapiName() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /**
     * Parses QEMU's name.
     *
     * @throws IllegalArgumentException naming the capability and the supported ones
     */
    public static MigrationCapability fromName(String name) {
        for (MigrationCapability c : values()) {
            if (c.qapiName().equals(name)) {
                return c;
            }
        }
        StringBuilder known = new StringBuilder();
        for (MigrationCapability c : values()) {
            known.append(known.isEmpty() ? "" : ", ").append(c.qapiName());
        }
        throw new IllegalArgumentException("Capability '" + name + "' is not supported by Modemu (supported: " + known + ")");
    }

    @Override
    public String toString() {
        return qapiName();
    }
}
