package io.modemu.migration;

import io.modemu.machine.RamBlock;
import java.io.IOException;
import java.util.List;

/**
 * Optional role of an incoming {@link MigrationChannel}: lets the source write this machine's guest
 * RAM one-sided (the destination half of {@link RemoteRamWriter}).
 *
 * <p>Threads: both methods are called by the destination's migration thread.
 */
public interface RemoteRamTarget {
    /**
     * Exposes guest RAM to the source. Called after the configuration was checked (the source's blocks
     * have the same names and sizes) and before any page arrives.
     *
     * @return a token the engine hands to the source's {@link RemoteRamWriter#open} (at most 16 MiB)
     */
    byte[] expose(List<RamBlock> blocks) throws IOException;

    /**
     * Withdraws the exposure when the incoming migration ends, whatever the outcome: once this
     * returns, no remote write lands in guest RAM any more.
     */
    void withdraw();
}
