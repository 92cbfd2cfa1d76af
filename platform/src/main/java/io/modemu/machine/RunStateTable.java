package io.modemu.machine;

import static io.modemu.machine.RunState.*;

import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;

/**
 * QEMU's run-state transition table (softmmu/runstate.c), without COLO. Changing to the state the
 * VM is already in is always allowed and does nothing.
 */
public final class RunStateTable {
    private static final Map<RunState, Set<RunState>> ALLOWED = new EnumMap<>(RunState.class);

    static {
        allow(PRELAUNCH, INMIGRATE, RUNNING, FINISH_MIGRATE);
        allow(DEBUG, RUNNING, FINISH_MIGRATE, PRELAUNCH, SUSPENDED);
        allow(INMIGRATE, INTERNAL_ERROR, IO_ERROR, PAUSED, RUNNING, SHUTDOWN, SUSPENDED, WATCHDOG, GUEST_PANICKED,
                FINISH_MIGRATE, PRELAUNCH, POSTMIGRATE);
        allow(INTERNAL_ERROR, PAUSED, FINISH_MIGRATE, PRELAUNCH);
        allow(IO_ERROR, RUNNING, FINISH_MIGRATE, PRELAUNCH);
        allow(PAUSED, RUNNING, FINISH_MIGRATE, POSTMIGRATE, PRELAUNCH, SUSPENDED);
        allow(POSTMIGRATE, RUNNING, FINISH_MIGRATE, PRELAUNCH);
        allow(FINISH_MIGRATE, RUNNING, PAUSED, POSTMIGRATE, PRELAUNCH);
        allow(RESTORE_VM, RUNNING, PRELAUNCH);
        allow(RUNNING, DEBUG, INTERNAL_ERROR, IO_ERROR, PAUSED, FINISH_MIGRATE, RESTORE_VM, SAVE_VM, SHUTDOWN, WATCHDOG,
                GUEST_PANICKED, SUSPENDED);
        allow(SAVE_VM, RUNNING);
        allow(SHUTDOWN, PAUSED, FINISH_MIGRATE, PRELAUNCH);
        allow(SUSPENDED, RUNNING, FINISH_MIGRATE, PRELAUNCH);
        allow(WATCHDOG, RUNNING, FINISH_MIGRATE, PRELAUNCH);
        allow(GUEST_PANICKED, RUNNING, FINISH_MIGRATE, PRELAUNCH);
    }

    private RunStateTable() {
    }

    private static void allow(RunState from, RunState... to) {
        ALLOWED.computeIfAbsent(from, k -> EnumSet.noneOf(RunState.class)).addAll(Set.of(to));
    }

    public static boolean isAllowed(RunState from, RunState to) {
        return from == to || ALLOWED.getOrDefault(from, Set.of()).contains(to);
    }

    /** @throws IllegalRunStateTransitionException naming both states if the change is not allowed */
    public static void check(RunState from, RunState to) {
        if (!isAllowed(from, to)) {
            throw new IllegalRunStateTransitionException(from, to);
        }
    }
}
