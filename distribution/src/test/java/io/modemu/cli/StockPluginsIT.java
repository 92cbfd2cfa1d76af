package io.modemu.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.guest.GuestTask;
import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.options.Options;
import io.modemu.platform.PlatformVersion;
import io.modemu.plugin.PluginHost;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The packaged stock plugins, loaded by the plugin host into their own module layers, work together:
 * disk-verify (a guest program) drives virtio-blk (a device) over the file driver (a block driver).
 */
class StockPluginsIT {
    @Test
    void diskVerifyRunsOnVirtioBlkOverAFileWithEveryPartLoadedAsAPlugin(@TempDir Path tmp) throws Exception {
        Path plugins = Path.of(System.getProperty("modemu.dist.dir"), "plugins");
        Path image = tmp.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(4L << 20);
        }
        try (PluginHost host = PluginHost.load(plugins, PlatformVersion.get())) {
            assertThat(host.problems()).isEmpty();
            try (Machine m = Machine.builder().ram(16L << 20).iothread("io0").contributions(host.contributions()).build()) {
                m.addDrive("d0", Options.parse("-drive", "driver=file,filename=" + image, null));
                m.addDevice(Options.parse("-device", "virtio-blk-device,drive=d0,iothread=io0", "driver"));
                GuestTask t = m.loadGuest("disk-verify", Options.parse("-guest", "blocks=128,queue-depth=16,dirty-rate=1M", null));
                assertThat(t.getClass().getModule().getName()).isEqualTo("io.modemu.guest.diskverify");
                assertThat(t.getClass().getModule().getLayer()).isNotSameAs(ModuleLayer.boot());
                m.vmStart().get(10, TimeUnit.SECONDS);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (((Number) t.status().getOrDefault("verified", 0L)).longValue() < 500 && System.nanoTime() < deadline) {
                    Thread.sleep(10);
                }
                m.vmStop(RunState.PAUSED).get(10, TimeUnit.SECONDS);
                assertThat(t.status()).containsEntry("phase", "running").containsEntry("failed", 0L);
                assertThat(((Number) t.status().get("verified")).longValue()).isGreaterThanOrEqualTo(500);
            }
        }
    }
}
