package io.modemu.migration;

/**
 * A device role: state that moves with the VM in a one-shot, versioned section (QEMU's VMState).
 *
 * <p>{@link #saveState} runs on the main loop with the VM stopped and the device drained;
 * {@link #loadState} runs on the destination's main loop before the VM starts. Loading must treat
 * the bytes as untrusted: {@link StateReader} bounds-checks every read, and the device checks every
 * value it takes (indices, addresses, sizes) before using it.
 */
public interface Migratable {
    /** The section name, unique in the machine (for example {@code virtio-blk:vd0}). */
    String stateName();

    /** The version this build writes. */
    int stateVersion();

    /** The oldest version this build can load. */
    default int minimumStateVersion() {
        return stateVersion();
    }

    /**
     * Settings that must be the same on both ends (for example a queue size or a disk geometry).
     * They travel in the configuration section and are compared before anything is written into the
     * destination's guest RAM; a difference fails the migration naming the setting. Main loop.
     */
    default java.util.Map<String, String> settings() {
        return java.util.Map.of();
    }

    void saveState(StateWriter out);

    /** @throws MigrationStreamException naming the section when the state is malformed */
    void loadState(StateReader in, int version);
}
