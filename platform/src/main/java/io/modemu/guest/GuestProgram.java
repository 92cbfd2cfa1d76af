package io.modemu.guest;

import io.modemu.options.Options;

/**
 * What a vCPU runs until a CPU plugin exists: a program contributed by a plugin (found with
 * {@link java.util.ServiceLoader}), chosen with {@code -guest NAME,key=value,...}.
 */
public interface GuestProgram {
    /** The program's name, as in {@code -guest NAME}. */
    String name();

    /** One line for {@code modemu plugins}. */
    String description();

    /**
     * Prepares the program for one vCPU. Runs on the main loop before the vCPU first runs. Reads its
     * options (unread ones are rejected) and keeps all of its state in guest RAM if it is to survive
     * a migration.
     */
    GuestTask load(GuestEnvironment environment, Options options);
}
