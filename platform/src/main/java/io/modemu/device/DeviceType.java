package io.modemu.device;

import io.modemu.machine.Machine;
import io.modemu.options.Options;

/**
 * A device type a plugin contributes (found with {@link java.util.ServiceLoader}): creates devices
 * from {@code -device TYPE,key=value,...} options.
 */
public interface DeviceType {
    /** The type name, as in {@code -device NAME} (for example {@code virtio-blk-device}). */
    String name();

    /** One line for {@code modemu plugins} and {@code -device help}. */
    String description();

    /**
     * Creates and realizes a device. Runs on the main loop. Reads every option it understands from
     * {@code options} (the machine rejects the ones left unread) and throws
     * {@link io.modemu.options.ConfigurationException} naming the culprit on bad input; when it
     * throws, the machine undoes whatever the device registered.
     *
     * @param machine the machine the device is plugged into
     * @param id      the device's id (from {@code id=} or generated)
     * @param options the {@code -device} options, without {@code driver} and {@code id}
     */
    Device create(Machine machine, String id, Options options);
}
