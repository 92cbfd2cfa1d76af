package io.modemu.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code modemu} command. */
@Command(name = "modemu", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "Modemu, a plugin-based machine emulator.",
        subcommands = {PluginsCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs the command and returns its exit code (tests call this). */
    public static int execute(String... args) {
        CommandLine cl = new CommandLine(new Main());
        cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            cmd.getErr().println("modemu: " + (ex.getMessage() != null ? ex.getMessage() : ex.toString()));
            return 1;
        });
        return cl.execute(args);
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command (try: modemu plugins)");
    }
}
