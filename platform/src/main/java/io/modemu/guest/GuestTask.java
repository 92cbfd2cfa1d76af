package io.modemu.guest;

/**
 * A guest program loaded on a vCPU. The vCPU calls {@link #step()} repeatedly on its own thread;
 * between two steps is the vCPU's safe point, where it pauses when the VM stops.
 */
public interface GuestTask {
    /** Return value of {@link #step()}: run the next step right away. */
    long CONTINUE = 0;
    /** Return value of {@link #step()}: the program finished; the vCPU halts for good. */
    long HALT = -1;

    /**
     * Runs a short slice of the program (microseconds, not seconds: the VM cannot stop while a step
     * runs).
     *
     * @return {@link #CONTINUE}, {@link #HALT}, or a positive number of nanoseconds to wait for an
     *         interrupt (the wait ends early when an interrupt line rises: QEMU's WFI)
     */
    long step();

    /**
     * What the program reports about itself (for example verified and failed block counts), as
     * JSON-friendly values.
     */
    default java.util.Map<String, Object> status() {
        return java.util.Map.of();
    }
}
