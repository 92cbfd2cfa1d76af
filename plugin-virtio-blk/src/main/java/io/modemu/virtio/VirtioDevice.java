package io.modemu.virtio;

/**
 * The device-specific half of a virtio device (virtio-blk, ...) behind a {@link VirtioMmioTransport}.
 *
 * <p>Threads: the transport calls {@link #start}, {@link #activateQueue} and {@link #reset} on the
 * vCPU thread that wrote the register, holding the transport's lock, so they must only hand work to
 * the device's contexts and return. {@link #notifyQueue} is called without the lock and must be
 * lock-free (it is the hot path: QueueNotify). Config reads and writes hold the lock.
 */
public interface VirtioDevice {
    /** The virtio device id (2 for a block device). */
    int deviceId();

    /** Every feature the device offers, transport features included. */
    long deviceFeatures();

    int numQueues();

    /** QueueNumMax of every queue: the largest size it accepts. */
    int queueMaxSize();

    /** Bytes of device-specific configuration space. */
    int configSize();

    /** One byte of configuration space, {@code 0 <= offset < configSize()}. */
    int readConfig(int offset);

    /** The driver wrote one byte of configuration space. */
    default void writeConfig(int offset, int value) {
    }

    /**
     * The driver set DRIVER_OK: start serving the queues whose layout is non-null, with the
     * negotiated {@code features}.
     */
    void start(long features, QueueLayout[] queues);

    /** After DRIVER_OK the driver made another queue ready. */
    void activateQueue(int index, QueueLayout layout);

    /** The driver notified queue {@code index} (QueueNotify). Lock-free; any vCPU thread. */
    void notifyQueue(int index);

    /**
     * The driver reset the device: stop serving every queue, drop what waits for a retry, and call
     * {@code done} (from any thread, possibly before returning) once no request is in flight. Until
     * then the transport keeps reporting the old status, so the driver keeps waiting as the
     * specification asks.
     */
    void reset(Runnable done);
}
