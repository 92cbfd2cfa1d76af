package io.modemu.cli;

import io.modemu.platform.Platform;
import io.modemu.platform.PlatformSettings;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code modemu run} (or {@code modemu} followed by QEMU-style options): runs a VM until a QMP {@code quit} or a signal. */
@Command(name = "run", sortOptions = false, description = {
        "Run a virtual machine. Options follow QEMU's syntax (key=value lists, ',,' for a comma).",
        "Example: modemu run -m 512M -object iothread,id=io0 -drive file=disk.img,format=raw,if=none,id=d0 \\",
        "           -device virtio-blk-device,drive=d0,iothread=io0 -qmp unix:/tmp/vm.sock,server=on,wait=off"})
public final class RunCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = {"-machine", "--machine", "-M"}, paramLabel = "TYPE[,memory=SIZE][,memory-backend=ID]", description = "machine type (virt)")
    String machine;
    @Option(names = {"-m", "--m"}, paramLabel = "SIZE", description = "guest RAM (a plain number means MiB), default 128M")
    String memory;
    @Option(names = {"-smp", "--smp"}, paramLabel = "N", description = "number of vCPUs (default 1)")
    String smp;
    @Option(names = {"-object", "--object"}, paramLabel = "TYPE,id=ID,...", description = "iothread,id=ID | memory-backend-file,id=ID,size=SIZE,mem-path=PATH,share=on")
    List<String> objects = new ArrayList<>();
    @Option(names = {"-drive", "--drive"}, paramLabel = "file=PATH,format=raw,if=none,id=ID[,readonly=on][,cache=...]")
    List<String> drives = new ArrayList<>();
    @Option(names = {"-blockdev", "--blockdev"}, paramLabel = "driver=...,node-name=ID,... | JSON")
    List<String> blockdevs = new ArrayList<>();
    @Option(names = {"-device", "--device"}, paramLabel = "TYPE,key=value,...", description = "a device a plugin provides, or loader,file=PATH,addr=GPA")
    List<String> devices = new ArrayList<>();
    @Option(names = {"-guest", "--guest"}, paramLabel = "PROGRAM,key=value,...", description = "the guest program vCPU 0 runs (until a CPU plugin exists)")
    String guest;
    @Option(names = {"-incoming", "--incoming"}, paramLabel = "URI|defer", description = "wait for an incoming migration")
    String incoming;
    @Option(names = {"-qmp", "--qmp"}, paramLabel = "unix:PATH|tcp:HOST:PORT,server=on,wait=off", description = "a QMP monitor")
    List<String> qmp = new ArrayList<>();
    @Option(names = {"-serial", "--serial"}, paramLabel = "none|null|stdio|file:PATH")
    List<String> serial = new ArrayList<>();
    @Option(names = {"-display", "--display"}, paramLabel = "none")
    String display;
    @Option(names = {"-monitor", "--monitor"}, paramLabel = "none")
    String monitor;
    @Option(names = {"-S"}, description = "do not start the VM (start it with QMP 'cont')")
    boolean startPaused;
    @Option(names = {"-name", "--name"}, paramLabel = "NAME")
    String name;
    @Option(names = {"-nodefaults", "--nodefaults"}, description = "no default devices (there are none anyway)")
    boolean nodefaults;
    @Option(names = {"-pidfile", "--pidfile"}, paramLabel = "FILE")
    Path pidfile;
    @Option(names = "--plugins-dir", paramLabel = "DIR", description = "plugins directory (default: the installation's plugins/)")
    Path pluginsDir;

    VmLauncher.Config config() {
        return new VmLauncher.Config(machine, memory, smp, objects, drives, blockdevs, devices, guest, incoming, qmp, serial,
                display, monitor, startPaused, name, pidfile);
    }

    @Override
    public Integer call() throws Exception {
        try (Platform platform = Platform.boot(new PlatformSettings(Installation.pluginsDir(pluginsDir)));
             VmLauncher vm = new VmLauncher(platform)) {
            Thread hook = new Thread(() -> vm.requestQuit("host-signal"));
            Runtime.getRuntime().addShutdownHook(hook);
            vm.launch(config());
            vm.awaitQuit();
            if (vm.failure() != null) {
                spec.commandLine().getErr().println("modemu: " + vm.failure());
                return 1;
            }
            return 0;
        }
    }
}
