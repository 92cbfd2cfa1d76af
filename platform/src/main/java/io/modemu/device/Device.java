package io.modemu.device;

/**
 * A realized device. Devices implement the role interfaces that apply to them
 * ({@link MmioDevice}, {@link io.modemu.migration.Migratable}, ...) instead of extending a base class.
 */
public interface Device {
    /** The device's id ({@code -device ...,id=ID}); unique within its machine. */
    String id();

    /** The device type name, as in {@code -device TYPE}. */
    String typeName();

    /**
     * Releases what the device holds when it is removed or the machine shuts down. Runs on the
     * main loop, after the VM stopped. Registrations made through the machine while the device was
     * realized are undone by the machine.
     */
    default void unrealize() {
    }
}
