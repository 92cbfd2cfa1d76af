package io.modemu.monitor;

import io.modemu.machine.Machine;

/** What a monitor command can reach. */
public interface MonitorContext {
    Machine machine();

    /** Asks the process to shut down once the reply is sent (the {@code quit} command). */
    void requestQuit(String reason);

    /** A service the process registered for commands (for example the migration engine), if any. */
    <T> T service(Class<T> type);
}
