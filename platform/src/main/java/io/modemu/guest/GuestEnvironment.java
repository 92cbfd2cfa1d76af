package io.modemu.guest;

import io.modemu.machine.GuestMemory;
import io.modemu.machine.InterruptController;
import io.modemu.machine.MmioBus;

/** What a guest program sees of the machine: RAM, MMIO, interrupt lines and a clock. */
public interface GuestEnvironment {
    /** Guest RAM; writes through it are dirty-tracked. */
    GuestMemory memory();

    /** MMIO space (the virtio-mmio slots). */
    MmioBus mmio();

    InterruptController interrupts();

    /** The guest clock in nanoseconds (virtual under a deterministic scheduler). */
    long nanoTime();

    /** Index of the vCPU the program runs on. */
    int vcpuIndex();

    /** Guest-physical address of the first RAM byte. */
    long ramBase();

    /** RAM size in bytes of the first RAM block. */
    long ramSize();
}
