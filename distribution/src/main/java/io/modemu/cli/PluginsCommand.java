package io.modemu.cli;

import io.modemu.platform.PlatformVersion;
import io.modemu.plugin.ContributionKind;
import io.modemu.plugin.PluginHost;
import io.modemu.plugin.PluginInfo;
import io.modemu.plugin.PluginProblem;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code modemu plugins [list | enable ID | disable ID]}: what is installed, and per-deployment choice. */
@Command(name = "plugins", description = "List the installed plugins, or enable / disable one for this installation.")
public final class PluginsCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--plugins-dir", paramLabel = "DIR", description = "plugins directory (default: the installation's plugins/)")
    Path pluginsDir;

    @Parameters(index = "0", arity = "0..1", paramLabel = "ACTION", description = "list (default), enable or disable")
    String action = "list";

    @Parameters(index = "1", arity = "0..1", paramLabel = "ID", description = "plugin id, for enable and disable")
    String pluginId;

    @Override
    public Integer call() {
        Path dir = Installation.pluginsDir(pluginsDir);
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        switch (action) {
            case "list" -> {
                if (pluginId != null) {
                    throw new CommandLine.ParameterException(spec.commandLine(), "plugins list takes no plugin id");
                }
                return list(dir, out);
            }
            case "enable", "disable" -> {
                if (pluginId == null) {
                    throw new CommandLine.ParameterException(spec.commandLine(), "plugins " + action + " needs a plugin id");
                }
                if (!Files.isDirectory(dir)) {
                    err.println("modemu: plugins directory " + dir + " does not exist");
                    return 1;
                }
                try (PluginHost host = PluginHost.load(dir, PlatformVersion.get())) {
                    boolean known = host.plugins().stream().anyMatch(p -> p.id().equals(pluginId))
                            || host.problems().stream().anyMatch(p -> p.pluginId().equals(pluginId));
                    if (!known) {
                        err.println("modemu: no plugin '" + pluginId + "' in " + dir);
                        return 1;
                    }
                }
                if (action.equals("enable")) {
                    PluginHost.enable(dir, pluginId);
                } else {
                    PluginHost.disable(dir, pluginId);
                }
                out.println("plugin '" + pluginId + "' " + action + "d in " + dir);
                return 0;
            }
            default -> throw new CommandLine.ParameterException(spec.commandLine(),
                    "unknown action '" + action + "' (use list, enable ID or disable ID)");
        }
    }

    private static int list(Path dir, PrintWriter out) {
        if (!Files.isDirectory(dir)) {
            out.println("plugins directory " + dir + " does not exist: no plugins");
            return 1;
        }
        try (PluginHost host = PluginHost.load(dir, PlatformVersion.get())) {
            out.println("Plugins in " + dir + " (platform " + PlatformVersion.get() + "):");
            List<String[]> rows = new ArrayList<>();
            rows.add(new String[] {"ID", "VERSION", "MODULE", "CONTRIBUTES"});
            for (PluginInfo p : host.plugins()) {
                List<String> c = new ArrayList<>();
                for (ContributionKind k : ContributionKind.values()) {
                    List<String> names = p.contributions().getOrDefault(k, List.of());
                    if (!names.isEmpty()) {
                        c.add(k.label() + (names.size() > 1 ? "s " : " ") + String.join(", ", names));
                    }
                }
                rows.add(new String[] {p.id(), p.version(), p.moduleName(), c.isEmpty() ? "(nothing)" : String.join("; ", c)});
            }
            int[] w = new int[3];
            for (String[] r : rows) {
                for (int i = 0; i < 3; i++) {
                    w[i] = Math.max(w[i], r[i].length());
                }
            }
            for (String[] r : rows) {
                out.printf("  %-" + w[0] + "s  %-" + w[1] + "s  %-" + w[2] + "s  %s%n", r[0], r[1], r[2], r[3]);
            }
            List<PluginProblem> disabled = host.problems().stream().filter(PluginProblem::disabled).toList();
            List<PluginProblem> failed = host.problems().stream().filter(p -> !p.disabled()).toList();
            if (!disabled.isEmpty()) {
                out.println("Disabled:");
                disabled.forEach(p -> out.println("  " + p.pluginId() + " (" + p.path().getFileName() + ")"));
            }
            if (!failed.isEmpty()) {
                out.println("Failed:");
                failed.forEach(p -> out.println("  " + p.message()));
            }
            return 0;
        }
    }
}
