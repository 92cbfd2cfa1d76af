package io.modemu.guest.diskverify;

/**
 * What disk-verify was asked to do. Stored in guest RAM with the rest of its state: after a
 * migration the destination uses the values from RAM.
 *
 * @param blocks     blocks written and verified per generation, from sector 0
 * @param blockSize  bytes per block (a multiple of 512)
 * @param depth      requests kept in flight
 * @param dirtyRate  bytes of guest RAM dirtied per second (0: none)
 * @param dirtySize  size of the RAM area dirtied, cyclically
 * @param indirect   whether the driver uses indirect descriptors
 */
public record DiskVerifyConfig(long blocks, int blockSize, int depth, long dirtyRate, long dirtySize, boolean indirect) {
}
