package io.modemu.migration;

/** A migration command that cannot be carried out (one already running, a VM in the wrong state). The message says why. */
public final class MigrationException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public MigrationException(String message) {
        super(message);
    }

    public MigrationException(String message, Throwable cause) {
        super(message, cause);
    }
}
