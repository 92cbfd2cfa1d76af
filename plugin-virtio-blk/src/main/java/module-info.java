/** Plugin 'virtio-blk': the virtio-blk device (being built; see its issue). */
module io.modemu.virtio.blk {
    requires io.modemu.platform;
}
