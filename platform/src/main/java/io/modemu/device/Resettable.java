package io.modemu.device;

/** A device role: returns to its power-on state on a system reset. Runs on the main loop with the vCPUs paused. */
public interface Resettable {
    void reset();
}
