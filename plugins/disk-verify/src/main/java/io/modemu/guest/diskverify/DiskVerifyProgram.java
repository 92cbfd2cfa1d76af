package io.modemu.guest.diskverify;

import io.modemu.guest.GuestEnvironment;
import io.modemu.guest.GuestProgram;
import io.modemu.guest.GuestTask;
import io.modemu.options.ConfigurationException;
import io.modemu.options.Options;

/**
 * Guest program {@code disk-verify}: {@code -guest disk-verify[,blocks=N][,block-size=B][,queue-depth=D]
 * [,dirty-rate=BYTES_PER_S][,dirty-size=BYTES][,indirect=on|off]}.
 *
 * <p>Finds the first virtio-blk disk by probing the virtio-mmio slots, then forever: writes blocks
 * {@code 0..N-1} stamped with (sector, generation, checksum), reads them back and verifies them, and
 * moves to the next generation; meanwhile it dirties {@code dirty-rate} bytes of guest RAM per second
 * (one write per 4 KiB page, cycling through {@code dirty-size} bytes). Every bit of its state lives in
 * guest RAM, so after a migration the destination carries on where the source stopped.
 */
public final class DiskVerifyProgram implements GuestProgram {
    @Override
    public String name() {
        return "disk-verify";
    }

    @Override
    public String description() {
        return "writes, reads back and verifies stamped blocks on a virtio-blk disk while dirtying guest RAM";
    }

    @Override
    public GuestTask load(GuestEnvironment environment, Options options) {
        long blocks = options.integer("blocks", 256, 1, 1L << 32);
        long blockSize = options.size("block-size", 4096);
        if (blockSize < 512 || blockSize > (1 << 20) || blockSize % 512 != 0) {
            throw new ConfigurationException(options.context() + ": option 'block-size' must be a multiple of 512 up to 1M, not " + blockSize);
        }
        int depth = (int) options.integer("queue-depth", 16, 1, DiskVerifyState.MAX_DEPTH);
        long rate = options.size("dirty-rate", 0);
        long dirtySize = options.size("dirty-size", 4L << 20);
        if (dirtySize < 4096 || dirtySize % 4096 != 0) {
            throw new ConfigurationException(options.context() + ": option 'dirty-size' must be a positive multiple of 4K, not " + dirtySize);
        }
        boolean indirect = options.bool("indirect", false);
        DiskVerifyConfig config = new DiskVerifyConfig(blocks, (int) blockSize, depth, rate, dirtySize, indirect);
        long needed = DiskVerifyState.layoutBytes(config);
        if (needed > environment.ramSize()) {
            throw new ConfigurationException(options.context() + ": needs " + needed + " bytes of guest RAM (state, driver, buffers, dirty-size), the machine has "
                    + environment.ramSize());
        }
        return new DiskVerifyTask(environment, config);
    }
}
