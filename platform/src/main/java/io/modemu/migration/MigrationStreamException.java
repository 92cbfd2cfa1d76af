package io.modemu.migration;

/** A migration stream or a saved state that cannot be trusted: truncated, corrupt, or out of bounds. The message names the section. */
public final class MigrationStreamException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public MigrationStreamException(String message) {
        super(message);
    }

    public MigrationStreamException(String message, Throwable cause) {
        super(message, cause);
    }
}
