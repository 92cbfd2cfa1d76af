package io.modemu.migration;

/**
 * How a destination behaves.
 *
 * @param autostart   start the VM once the migration completed (QEMU's default; {@code -S} turns it
 *                    off and the VM stays paused)
 * @param keepWaiting after a failed incoming migration, discard it and wait for the next one on the
 *                    same address instead of ending in {@code failed}
 */
public record IncomingOptions(boolean autostart, boolean keepWaiting) {
    /** Autostart, no retry: a failed incoming migration ends the destination's job. */
    public static IncomingOptions defaults() {
        return new IncomingOptions(true, false);
    }
}
