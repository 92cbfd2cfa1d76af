/** Benchmark harnesses: plain mains that print key=value figures (run them with bench/run). */
module io.modemu.bench {
    requires io.modemu.platform;
    requires io.modemu.guest.diskverify;
    requires java.management;

    uses io.modemu.block.BlockDriver;
    uses io.modemu.device.DeviceType;
}
