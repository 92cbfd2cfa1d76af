package io.modemu.machine;

import java.util.Locale;

/** The VM's run state, with QEMU's names (as {@code query-status} reports them). */
public enum RunState {
    PRELAUNCH, INMIGRATE, RUNNING, PAUSED, FINISH_MIGRATE, POSTMIGRATE, IO_ERROR, INTERNAL_ERROR, SHUTDOWN, SUSPENDED,
    GUEST_PANICKED, SAVE_VM, RESTORE_VM, DEBUG, WATCHDOG;

    /** QEMU's name, for example {@code finish-migrate}. */
    public String qapiName() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /** Parses QEMU's name ({@code finish-migrate}) or the constant name. */
    public static RunState fromName(String name) {
        return valueOf(name.toUpperCase(Locale.ROOT).replace('-', '_'));
    }

    @Override
    public String toString() {
        return qapiName();
    }
}
