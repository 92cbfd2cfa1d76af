package io.modemu.virtio;

/**
 * Where the driver put one split virtqueue (QueueNum, QueueDesc, QueueDriver, QueueDevice), as the
 * transport checked it when the driver wrote QueueReady.
 */
public record QueueLayout(int size, long desc, long avail, long used) {
}
