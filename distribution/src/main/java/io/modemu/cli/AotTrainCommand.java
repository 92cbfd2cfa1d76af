package io.modemu.cli;

import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.migration.LiveMigration;
import io.modemu.monitor.QmpClient;
import io.modemu.platform.Platform;
import io.modemu.platform.PlatformSettings;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code modemu aot-train} (hidden): the workload that {@code modemu aot-cache} runs in a JVM started
 * with {@code -XX:AOTCacheOutput}, so that the JDK's AOT cache holds the classes, linkage and method
 * profiles of what a VM's life exercises: boot, plugin loading, a VM with a virtio-blk disk on an
 * IOThread and the disk-verify guest, the monitor, and the migration warm-up (a loopback migration
 * over every installed transport). Exits 0 once all of that ran.
 */
@Command(name = "aot-train", hidden = true, description = "the workload that trains the JDK AOT cache (run by 'modemu aot-cache')")
public final class AotTrainCommand implements Callable<Integer> {
    private static final long TIMEOUT_SECONDS = 120;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--plugins-dir", paramLabel = "DIR", description = "plugins directory (default: the installation's plugins/)")
    Path pluginsDir;

    @Override
    public Integer call() throws Exception {
        Path work = Files.createTempDirectory("modemu-aot-train-");
        try {
            Path disk = work.resolve("disk.img");
            try (RandomAccessFile f = new RandomAccessFile(disk.toFile(), "rw")) {
                f.setLength(32L << 20);
            }
            Path sock = work.resolve("qmp.sock");
            try (Platform platform = Platform.boot(new PlatformSettings(Installation.pluginsDir(pluginsDir)));
                 VmLauncher vm = new VmLauncher(platform)) {
                vm.launch(new VmLauncher.Config(null, "64M", null, List.of("iothread,id=io0"),
                        List.of("file=" + disk.toString().replace(",", ",,") + ",format=raw,if=none,id=d0"), List.of(),
                        List.of("virtio-blk-device,drive=d0,iothread=io0"), "disk-verify", null,
                        List.of("unix:" + sock + ",server=on,wait=off"), List.of("none"), "none", null, false, "aot-train", null));
                Machine m = vm.machine();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
                while (m.runState() != RunState.RUNNING) {
                    if (System.nanoTime() > deadline || vm.failure() != null) {
                        throw new IllegalStateException("the training VM did not start: " + (vm.failure() != null ? vm.failure() : m.runState()));
                    }
                    Thread.sleep(10);
                }
                try (QmpClient q = QmpClient.connect(sock.toString())) {
                    q.negotiate();
                    q.execute("query-status", Map.of());
                    q.execute("query-block", Map.of());
                    q.execute("query-migrate", Map.of());
                }
                // the migration warm-up starts with the VM's LiveMigration: it moves a small machine of its
                // own over every installed transport, which is what the cache should record
                LiveMigration.warmUp().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
                Thread.sleep(1000);
                vm.requestQuit("aot-train");
                vm.awaitQuit();
                if (vm.failure() != null) {
                    spec.commandLine().getErr().println("modemu aot-train: " + vm.failure());
                    return 1;
                }
            }
            spec.commandLine().getOut().println("modemu aot-train: done");
            return 0;
        } finally {
            WorkDirs.delete(work);
        }
    }
}
