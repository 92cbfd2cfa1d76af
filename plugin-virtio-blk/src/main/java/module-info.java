/**
 * Plugin 'virtio-blk': the virtio-blk device on the virtio-mmio transport, with an IOThread
 * dataplane that stops and starts with the VM.
 */
module io.modemu.virtio.blk {
    requires io.modemu.platform;

    provides io.modemu.device.DeviceType with io.modemu.virtio.blk.VirtioBlkDeviceType;
}
