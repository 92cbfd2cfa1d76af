package io.modemu.monitor;

/**
 * A QMP command a plugin adds (found with {@link java.util.ServiceLoader} in the plugin's layer).
 *
 * <p>Arguments and results are JSON-shaped plain Java values: {@code Map<String, Object>},
 * {@code List<Object>}, {@code String}, {@code Number}, {@code Boolean}, {@code null}. Commands run
 * on the monitor connection's own thread, never on an event loop: to touch the machine they submit
 * to its main loop and wait ({@link io.modemu.machine.Machine#onMainLoop}).
 */
public interface MonitorCommand {
    /** The command name as clients send it in {@code "execute"}. */
    String name();

    /**
     * Runs the command.
     *
     * @return the {@code "return"} value ({@code Map.of()} for commands that return nothing)
     * @throws QmpError with QEMU's error class and a description naming the culprit
     */
    Object execute(CommandArguments arguments, MonitorContext context);
}
