package io.modemu.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code modemu} command. */
@Command(name = "modemu", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "Modemu, a plugin-based machine emulator.",
        subcommands = {RunCommand.class, QmpCommand.class, MigrateCommand.class, DemoCommand.class, PluginsCommand.class, AotCacheCommand.class, AotTrainCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs the command and returns its exit code. */
    public static int execute(String... args) {
        return execute(null, null, args);
    }

    /** Runs the command with its output going to {@code out} and {@code err} (null: the console); returns the exit code. */
    public static int execute(java.io.PrintWriter out, java.io.PrintWriter err, String... args) {
        if (args.length > 0 && args[0].startsWith("-") && !java.util.Set.of("-h", "--help", "-V", "--version").contains(args[0])) {
            // QEMU style: bin/modemu -machine virt ... means bin/modemu run -machine virt ...
            String[] withRun = new String[args.length + 1];
            withRun[0] = "run";
            System.arraycopy(args, 0, withRun, 1, args.length);
            args = withRun;
        }
        CommandLine cl = new CommandLine(new Main());
        cl.setPosixClusteredShortOptionsAllowed(false);
        if (out != null) {
            cl.setOut(out);
        }
        if (err != null) {
            cl.setErr(err);
        }
        cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            cmd.getErr().println("modemu: " + (ex.getMessage() != null ? ex.getMessage() : ex.toString()));
            if (!(ex instanceof io.modemu.options.ConfigurationException)) {
                org.slf4j.LoggerFactory.getLogger(Main.class).debug("command failed", ex);
            }
            return 1;
        });
        cl.setParameterExceptionHandler((ex, a) -> {
            ex.getCommandLine().getErr().println("modemu: " + ex.getMessage());
            ex.getCommandLine().getErr().println("Try 'modemu " + (ex.getCommandLine().getCommandName().equals("modemu") ? "" : ex.getCommandLine().getCommandName() + " ") + "--help' for more information.");
            return 1;
        });
        return cl.execute(args);
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command (try: modemu plugins)");
    }
}
