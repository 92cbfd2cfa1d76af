/** Stock plugin 'file': the raw image block driver. */
module io.modemu.block.file {
    requires io.modemu.platform;
    requires org.slf4j;

    provides io.modemu.block.BlockDriver with io.modemu.block.file.FileBlockDriver;
}
