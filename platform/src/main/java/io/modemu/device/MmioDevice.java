package io.modemu.device;

/**
 * A device role: registers in guest-physical MMIO space.
 *
 * <p>Called on vCPU threads (any thread, possibly several at once): implementations synchronize
 * their register state themselves and never block on an event loop.
 */
public interface MmioDevice {
    /** Reads {@code size} (1, 2, 4 or 8) bytes at {@code offset} within the device's region. */
    long mmioRead(long offset, int size);

    /** Writes {@code size} bytes at {@code offset} within the device's region. */
    void mmioWrite(long offset, int size, long value);
}
