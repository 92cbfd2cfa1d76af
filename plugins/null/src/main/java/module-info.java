/** Stock plugin 'null': the null block driver. */
module io.modemu.block.nullco {
    requires io.modemu.platform;

    provides io.modemu.block.BlockDriver with io.modemu.block.nullco.NullBlockDriver;
}
