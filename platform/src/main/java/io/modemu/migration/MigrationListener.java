package io.modemu.migration;

import java.io.Closeable;
import java.io.IOException;
import java.time.Duration;

/** A listening endpoint for an incoming migration. */
public interface MigrationListener extends Closeable {
    /** The bound address (with the real port if 0 was asked). */
    String address();

    /** Waits up to {@code timeout} (forever if null) for the source to connect. */
    MigrationChannel accept(Duration timeout) throws IOException;
}
