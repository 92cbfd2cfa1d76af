/**
 * Stock plugin 'disk-verify': a guest program that writes, reads back and verifies stamped blocks on
 * a virtio-blk disk, and the guest-side virtio-mmio / virtio-blk driver it is built on (exported, so
 * that tests and benchmarks drive devices exactly as a guest would, like QEMU's libqos). Its own
 * package is exported for {@link io.modemu.guest.diskverify.DiskVerifyImageCheck}: tests check a
 * disk image against what the guest saw acknowledged.
 */
module io.modemu.guest.diskverify {
    requires io.modemu.platform;

    exports io.modemu.guest.virtio;
    exports io.modemu.guest.diskverify;

    provides io.modemu.guest.GuestProgram with io.modemu.guest.diskverify.DiskVerifyProgram;
}
