package io.modemu.migration.rdmasim.verbs;

/** Every case of {@link RdmaWriteTest} with the writer's adapter placing data with positional file writes ({@code copy=pwrite}). */
class RdmaWriteWithPwriteTest extends RdmaWriteTest {
    @Override
    boolean mappedWrites() {
        return false;
    }
}
