package io.modemu.migration.rdmasim.verbs;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;

/**
 * How a simulated device is set up: where its shared files live, the link it mimics, and the sizes
 * of its tables.
 *
 * @param shmDirectory            where the device's shared files are created ({@code /dev/shm} by default)
 * @param latency                 one-way latency of the simulated link (zero: as fast as memory)
 * @param bandwidthBytesPerSecond bandwidth of the simulated link in bytes per second (0: unlimited)
 * @param maxQueuePairs           queue pairs per device
 * @param maxMemoryRegions        memory regions per device
 * @param maxSharedFiles          shared files (allocations and attached file mappings) per device
 * @param maxMessageSize          the largest SEND payload; RDMA WRITE and READ go up to 2 GiB - 1
 * @param deregisterTimeout       how long deregistration waits for a peer's write in progress into the
 *                                region before giving up on it (the peer died in the middle of it)
 * @param mappedWrites            whether this device's one-sided writes copy through a mapping of the
 *                                peer's file, its pages mapped ahead by a prefetcher (the default), or
 *                                with positional file writes ({@code pwrite}); see {@code PeerMemory}
 */
public record FabricSettings(Path shmDirectory, Duration latency, long bandwidthBytesPerSecond, int maxQueuePairs,
                             int maxMemoryRegions, int maxSharedFiles, int maxMessageSize, Duration deregisterTimeout,
                             boolean mappedWrites) {

    /** The largest RDMA WRITE or READ, as {@code max_msg_sz} on most adapters. */
    public static final long MAX_RDMA_LENGTH = Integer.MAX_VALUE;

    public FabricSettings {
        Objects.requireNonNull(shmDirectory, "shmDirectory");
        if (latency.isNegative()) {
            throw new IllegalArgumentException("rdma-sim: latency " + latency + " is negative");
        }
        if (bandwidthBytesPerSecond < 0) {
            throw new IllegalArgumentException("rdma-sim: bandwidth " + bandwidthBytesPerSecond + " B/s is negative (0 means unlimited)");
        }
        if (maxQueuePairs < 1 || maxQueuePairs > 65535) {
            throw new IllegalArgumentException("rdma-sim: maxQueuePairs " + maxQueuePairs + " outside 1..65535");
        }
        if (maxMemoryRegions < 1 || maxMemoryRegions > (1 << 23)) {
            throw new IllegalArgumentException("rdma-sim: maxMemoryRegions " + maxMemoryRegions + " outside 1.." + (1 << 23));
        }
        if (maxSharedFiles < 1 || maxSharedFiles > 4096) {
            throw new IllegalArgumentException("rdma-sim: maxSharedFiles " + maxSharedFiles + " outside 1..4096");
        }
        if (maxMessageSize < 1) {
            throw new IllegalArgumentException("rdma-sim: maxMessageSize " + maxMessageSize + " must be positive");
        }
        if (deregisterTimeout.isNegative()) {
            throw new IllegalArgumentException("rdma-sim: deregisterTimeout " + deregisterTimeout + " is negative");
        }
    }

    /** {@code /dev/shm} (or the temporary directory where there is none), an ideal link, generous tables. */
    public static FabricSettings defaults() {
        Path shm = Path.of("/dev/shm");
        if (!Files.isDirectory(shm)) {
            shm = Path.of(System.getProperty("java.io.tmpdir"));
        }
        return new FabricSettings(shm, Duration.ZERO, 0, 256, 1 << 16, 256, 16 << 20, Duration.ofSeconds(5), true);
    }

    public FabricSettings withShmDirectory(Path dir) {
        return new FabricSettings(dir, latency, bandwidthBytesPerSecond, maxQueuePairs, maxMemoryRegions, maxSharedFiles, maxMessageSize, deregisterTimeout, mappedWrites);
    }

    public FabricSettings withLatency(Duration l) {
        return new FabricSettings(shmDirectory, l, bandwidthBytesPerSecond, maxQueuePairs, maxMemoryRegions, maxSharedFiles, maxMessageSize, deregisterTimeout, mappedWrites);
    }

    public FabricSettings withBandwidth(long bytesPerSecond) {
        return new FabricSettings(shmDirectory, latency, bytesPerSecond, maxQueuePairs, maxMemoryRegions, maxSharedFiles, maxMessageSize, deregisterTimeout, mappedWrites);
    }

    public FabricSettings withMaxMemoryRegions(int n) {
        return new FabricSettings(shmDirectory, latency, bandwidthBytesPerSecond, maxQueuePairs, n, maxSharedFiles, maxMessageSize, deregisterTimeout, mappedWrites);
    }

    public FabricSettings withDeregisterTimeout(Duration d) {
        return new FabricSettings(shmDirectory, latency, bandwidthBytesPerSecond, maxQueuePairs, maxMemoryRegions, maxSharedFiles, maxMessageSize, d, mappedWrites);
    }

    public FabricSettings withMaxMessageSize(int n) {
        return new FabricSettings(shmDirectory, latency, bandwidthBytesPerSecond, maxQueuePairs, maxMemoryRegions, maxSharedFiles, n, deregisterTimeout, mappedWrites);
    }

    public FabricSettings withMappedWrites(boolean mapped) {
        return new FabricSettings(shmDirectory, latency, bandwidthBytesPerSecond, maxQueuePairs, maxMemoryRegions, maxSharedFiles, maxMessageSize, deregisterTimeout, mapped);
    }
}
