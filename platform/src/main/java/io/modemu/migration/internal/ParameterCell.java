package io.modemu.migration.internal;

import io.modemu.migration.MigrationParameters;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

/**
 * The current migration parameters, which a running migration reads again on every record
 * ({@code max-bandwidth}, {@code downtime-limit}). One class for every source of parameters (a
 * {@code LiveMigration}, the engine's warm-up), so that the JIT compiles the page loop against it
 * once: with a lambda per source, the loop compiled during the warm-up met another class in the first
 * real migration and was thrown away and compiled again while that migration ran.
 */
public final class ParameterCell implements Supplier<MigrationParameters> {
    private final AtomicReference<MigrationParameters> value;

    public ParameterCell(MigrationParameters initial) {
        this.value = new AtomicReference<>(Objects.requireNonNull(initial));
    }

    @Override
    public MigrationParameters get() {
        return value.get();
    }

    public void set(MigrationParameters p) {
        value.set(Objects.requireNonNull(p));
    }

    /** Sets {@code next} if the parameters are still {@code expected} (the same object). */
    public boolean compareAndSet(MigrationParameters expected, MigrationParameters next) {
        return value.compareAndSet(expected, Objects.requireNonNull(next));
    }
}
