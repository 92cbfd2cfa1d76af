package io.modemu.migration;

import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.migration.internal.IncomingMigration;
import io.modemu.migration.internal.OutgoingMigration;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

/**
 * Live migration of one machine: what QEMU's migration commands act on. A source migrates with
 * {@link #migrate}; a destination (a machine in {@code inmigrate}) waits with {@link #incoming}.
 * Parameters and capabilities use QEMU's names, {@link #info()} answers query-migrate, and the
 * machine emits {@code MIGRATION} (each status change) and {@code MIGRATION_PASS} (each dirty-bitmap
 * synchronisation) events, for a monitor to forward.
 *
 * <p>The transfer runs on the migration's own threads, never on an event loop. Every method is
 * thread-safe and returns without waiting for the migration: call it from a monitor connection, a
 * CLI thread or a test. Errors say what is wrong and name the culprit (QEMU's wording where QEMU has
 * one).
 */
public final class LiveMigration implements AutoCloseable {
    private final Machine machine;
    private final io.modemu.migration.internal.ParameterCell parameters = new io.modemu.migration.internal.ParameterCell(MigrationParameters.defaults());
    private final Set<MigrationCapability> capabilities = EnumSet.noneOf(MigrationCapability.class);
    private OutgoingMigration outgoing;
    private IncomingMigration incoming;

    public LiveMigration(Machine machine) {
        this.machine = machine;
        // the first migration's set-up should not pay for the engine's one-time initialisation
        io.modemu.migration.internal.EngineWarmup.startOnce(machine.contributions());
    }

    /**
     * Completes once this process's migration warm-up ended: the engine's one-time costs are paid and
     * the per-page code on both ends is compiled (see {@code docs/transports.md}). It starts with the
     * first {@code LiveMigration} of the process and is stopped by the first migration that starts. A
     * benchmark waits for it so that its references are not measured next to it.
     */
    public static CompletableFuture<Void> warmUp() {
        return io.modemu.migration.internal.EngineWarmup.done();
    }

    public Machine machine() {
        return machine;
    }

    public MigrationParameters parameters() {
        return parameters.get();
    }

    /**
     * Sets the parameters (migrate-set-parameters). {@code max-bandwidth} and {@code downtime-limit}
     * also apply to a migration already running; the others from the next one.
     */
    public void setParameters(MigrationParameters p) {
        parameters.set(java.util.Objects.requireNonNull(p));
    }

    public synchronized Set<MigrationCapability> capabilities() {
        return Collections.unmodifiableSet(EnumSet.copyOf(capabilities.isEmpty() ? EnumSet.noneOf(MigrationCapability.class) : capabilities));
    }

    /**
     * Turns a capability on or off (migrate-set-capabilities).
     *
     * @throws MigrationException while a migration runs, as QEMU refuses it
     */
    public synchronized void setCapability(MigrationCapability c, boolean on) {
        if (isActive()) {
            throw new MigrationException("There's a migration process in progress");
        }
        if (on) {
            capabilities.add(c);
        } else {
            capabilities.remove(c);
        }
    }

    /** For query-migrate-capabilities: {@code [{"capability": NAME, "state": BOOL}, ...]}. */
    public synchronized List<Map<String, Object>> capabilitiesQmp() {
        List<Map<String, Object>> out = new ArrayList<>();
        for (MigrationCapability c : MigrationCapability.values()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("capability", c.qapiName());
            m.put("state", capabilities.contains(c));
            out.add(m);
        }
        return out;
    }

    private boolean isActive() {
        return outgoing != null && outgoing.status().isActive() || incoming != null && !incoming.completion().isDone();
    }

    /**
     * Starts migrating to {@code uri} ({@code scheme:address}, for example {@code tcp:10.0.0.2:4444}) and
     * returns; follow it with {@link #info()} or {@link #completion()}.
     *
     * @throws MigrationException                             if a migration runs already or the VM waits for an incoming one
     * @throws io.modemu.options.ConfigurationException naming the scheme and the plugin that would provide it when no transport does
     */
    public synchronized void migrate(String uri) {
        if (isActive()) {
            throw new MigrationException("There's a migration process in progress");
        }
        if (machine.runState() == RunState.INMIGRATE) {
            throw new MigrationException("Guest is waiting for an incoming migration");
        }
        Scheme s = Scheme.parse(uri);
        MigrationTransport t = machine.contributions().transport(s.scheme());
        io.modemu.migration.internal.EngineWarmup.yieldToMigration();
        OutgoingMigration m = new OutgoingMigration(machine, t, uri, s.address(), parameters, capabilities.contains(MigrationCapability.AUTO_CONVERGE),
                capabilities.contains(MigrationCapability.MULTIFD));
        outgoing = m;
        incoming = null;
        m.start();
    }

    /**
     * Waits for an incoming migration on {@code uri} ({@code -incoming} / migrate-incoming). The
     * machine must be in {@code inmigrate}. Returns once listening.
     *
     * @return the URI actually listened on (with the real port when port 0 was asked)
     * @throws MigrationException                       if the machine is not in {@code inmigrate} or already listens
     * @throws io.modemu.options.ConfigurationException for an unknown scheme or a malformed address
     * @throws UncheckedIOException                     when the address cannot be bound
     */
    public synchronized String incoming(String uri, IncomingOptions options) {
        if (incoming != null && !incoming.completion().isDone()) {
            throw new MigrationException("The incoming migration has already been started");
        }
        if (machine.runState() != RunState.INMIGRATE) {
            throw new MigrationException("an incoming migration needs the VM in state 'inmigrate' (start it with -incoming), it is '"
                    + machine.runState() + "'");
        }
        Scheme s = Scheme.parse(uri);
        MigrationTransport t = machine.contributions().transport(s.scheme());
        MigrationParameters p = parameters.get();
        MigrationListener l;
        try {
            l = t.listen(s.address(), new ChannelSettings(Duration.ofMillis(p.ioTimeoutMs()), Duration.ofMillis(p.ioTimeoutMs())));
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
        String bound = s.scheme() + ":" + l.address();
        IncomingMigration m = new IncomingMigration(machine, l, bound, options, p);
        incoming = m;
        outgoing = null;
        m.start();
        return bound;
    }

    /**
     * Cancels the migration in progress (migrate_cancel): an outgoing one unless it already handed the
     * VM over, an incoming one at any point before the VM started. Returns at once; the status becomes
     * {@code cancelled} (outgoing) or {@code failed} (incoming) once the machine is back.
     */
    public synchronized void cancel() {
        if (outgoing != null) {
            outgoing.cancel();
        }
        if (incoming != null && !incoming.completion().isDone()) {
            incoming.cancel();
        }
    }

    /** The current or last migration's status and statistics (query-migrate). */
    public synchronized MigrationInfo info() {
        if (outgoing != null) {
            return outgoing.info();
        }
        if (incoming != null) {
            return incoming.info();
        }
        return MigrationInfo.none();
    }

    /**
     * Completes with the final info of the current or last migration: completed, failed or
     * cancelled (outgoing, with the source already back); completed or failed (incoming, without
     * keep-waiting). Already complete, with status {@code none}, when no migration ran.
     */
    public synchronized CompletableFuture<MigrationInfo> completion() {
        if (outgoing != null) {
            return outgoing.completion();
        }
        if (incoming != null) {
            return incoming.completion();
        }
        return CompletableFuture.completedFuture(MigrationInfo.none());
    }

    /** Cancels what runs and waits (up to a minute) for it to end. */
    @Override
    public void close() {
        CompletableFuture<MigrationInfo> f;
        synchronized (this) {
            cancel();
            f = completion();
        }
        try {
            f.get(60, java.util.concurrent.TimeUnit.SECONDS);
        } catch (Exception e) {
            // closing: the migration reported its outcome already or never will
        }
    }

    /** {@code scheme:address}. */
    private record Scheme(String scheme, String address) {
        static Scheme parse(String uri) {
            int colon = uri == null ? -1 : uri.indexOf(':');
            if (colon <= 0) {
                throw new MigrationException("migration URI '" + uri + "' has no scheme (expected for example tcp:HOST:PORT)");
            }
            return new Scheme(uri.substring(0, colon), uri.substring(colon + 1));
        }
    }
}
