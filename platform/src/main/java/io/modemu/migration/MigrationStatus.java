package io.modemu.migration;

import java.util.Locale;

/** The status of a migration, with QEMU's names (query-migrate's {@code status}, the MIGRATION event). */
public enum MigrationStatus {
    /** No migration yet. */
    NONE,
    /** Connecting and exchanging the configuration. */
    SETUP,
    /** RAM passes while the VM runs (on a destination: receiving). */
    ACTIVE,
    /** The VM is stopped; the last pages and the device state go out. */
    DEVICE,
    COMPLETED,
    FAILED,
    /** Cancel asked; the source is being brought back. */
    CANCELLING,
    CANCELLED;

    /** QEMU's name, for example {@code cancelling}. */
    public String qapiName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Whether a migration in this status has ended. */
    public boolean isFinal() {
        return this == COMPLETED || this == FAILED || this == CANCELLED;
    }

    /** Whether a migration in this status is still running. */
    public boolean isActive() {
        return this == SETUP || this == ACTIVE || this == DEVICE || this == CANCELLING;
    }

    @Override
    public String toString() {
        return qapiName();
    }
}
