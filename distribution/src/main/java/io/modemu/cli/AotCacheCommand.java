package io.modemu.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/**
 * {@code modemu aot-cache}: listed here so that {@code modemu --help} shows it; {@code bin/modemu} runs it
 * itself (recording a cache takes a JVM started for it, with {@code -XX:AOTCacheOutput}, running
 * {@link AotTrainCommand}). Reaching this class means the command was run without the launcher.
 */
@Command(name = "aot-cache", description = {"Record a JDK AOT cache for this installation, so that modemu starts in about half",
        "the time (bin/modemu runs it; MODEMU_AOT=off: do not use the cache)."})
public final class AotCacheCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().getErr().println("modemu aot-cache: run it as bin/modemu aot-cache (the launcher starts the JVM that records the cache)");
        return 2;
    }
}
