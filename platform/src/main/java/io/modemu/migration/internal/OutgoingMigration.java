package io.modemu.migration.internal;

import io.modemu.machine.IllegalRunStateTransitionException;
import io.modemu.machine.Machine;
import io.modemu.machine.RamBlock;
import io.modemu.machine.RunState;
import io.modemu.machine.Vcpu;
import io.modemu.migration.ChannelSettings;
import io.modemu.migration.Migratable;
import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationParameters;
import io.modemu.migration.MigrationStatus;
import io.modemu.migration.MigrationTransport;
import io.modemu.migration.RemoteRamWriter;
import io.modemu.migration.StateWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One outgoing migration, run by its own thread ({@code modemu-migration}): setup, pre-copy passes,
 * completion, and the way back when anything fails.
 *
 * <p>Completion follows the platform's thread rules: this thread asks the main loop to stop the VM
 * into {@code finish-migrate} and waits on the returned future — it never runs a stop handler
 * itself and holds nothing the main loop needs; device state is saved by a task on the main loop.
 *
 * <p>The hand-over: after the last byte the destination loads everything and answers LOADED; this
 * thread then sends COMMIT, after which the source never resumes on its own; the destination starts
 * and answers RUNNING with how long ago its VM started: the downtime runs from the stop request here to
 * that moment (an upper bound by one network latency; no clocks of two hosts are compared). Any failure before COMMIT was written — a lost
 * connection, a destination error, a cancel, a stop handler failing — closes the channels, brings the
 * VM back to the run state it had and ends in {@code failed} or {@code cancelled}. If the destination
 * reports an error after COMMIT it is not running either, and the source resumes too. Only a
 * connection lost after COMMIT and before RUNNING leaves the outcome unknown here: the source then
 * stays stopped in {@code postmigrate} (never two running copies) and says so in {@code error-desc}.
 *
 * <p>Thread-safe: {@link #cancel()} and {@link #info()} may be called from any thread.
 */
public final class OutgoingMigration implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(OutgoingMigration.class);
    private static final long KEEPALIVE_NANOS = 500_000_000L;
    private static final long MIN_PASS_NANOS = 5_000_000L;
    /** How long the passes wait for the drives' flush before the stop (see {@link #run}); then the stop's own flush waits. */
    private static final long PRE_FLUSH_WAIT_NANOS = 10_000_000_000L;
    /** Set to {@code false}: no flush of the drives before the stop (for A/B measurements of the downtime). */
    static final String PRE_FLUSH = "modemu.migration.pre-flush";

    private final Machine machine;
    private final MigrationTransport transport;
    private final String uri;
    private final String address;
    private final ParameterCell parameters;
    private final MigrationParameters initial;
    private final boolean autoConverge;
    private final boolean multifd;
    private final List<RamBlock> blocks;
    private final MigrationProgress progress;
    private final Abort abort = new Abort();
    private final CompletableFuture<MigrationInfo> done = new CompletableFuture<>();
    private final List<MigrationChannel> channels = new CopyOnWriteArrayList<>();
    private final Object lifecycle = new Object();
    private volatile Thread thread;
    private boolean connecting;
    private boolean committed;
    private boolean finished;
    private StreamOutput main;
    private ReturnPath returnPath;
    private Runnable beforeSync = () -> { };
    private int dirtyRateHighCount;
    private int throttle;
    private long bytesAtLastSync;

    /**
     * @param parameters read again during the migration: {@code max-bandwidth} and {@code downtime-limit} take effect at once
     */
    public OutgoingMigration(Machine machine, MigrationTransport transport, String uri, String address, ParameterCell parameters,
                             boolean autoConverge, boolean multifd) {
        this.machine = machine;
        this.transport = transport;
        this.uri = uri;
        this.address = address;
        this.parameters = parameters;
        this.initial = parameters.get();
        this.autoConverge = autoConverge;
        this.multifd = multifd;
        this.blocks = machine.memory().blocks();
        this.progress = new MigrationProgress(machine, machine.memory().totalSize(), initial.downtimeLimitMs());
    }

    /** INFO for a machine's migration; DEBUG for the engine's warm-up machines, which operators did not ask for. */
    private void notice(String format, Object... arguments) {
        log.atLevel(EngineWarmup.noticeLevel(machine)).log(format, arguments);
    }

    /**
     * Runs {@code r} on the migration thread right before each bitmap synchronisation that ends an
     * iterative pass (not the final one). For the engine's warm-up, which dirties pages for the next
     * pass there. Call before {@link #start()}.
     */
    void beforeSync(Runnable r) {
        this.beforeSync = r;
    }

    /** Starts the migration thread. */
    public void start() {
        Thread t = Thread.ofPlatform().name("modemu-migration").daemon(true).unstarted(this);
        thread = t;
        t.start();
    }

    public MigrationInfo info() {
        return progress.info();
    }

    public MigrationStatus status() {
        return progress.status();
    }

    /** Completes with the final info once the migration ended and the source is back or handed over. */
    public CompletableFuture<MigrationInfo> completion() {
        return done;
    }

    /**
     * Cancels the migration unless it already handed the VM over. Any thread; returns at once (the
     * migration thread brings the source back, then the status becomes {@code cancelled}).
     *
     * @return whether the cancel was taken
     */
    public boolean cancel() {
        synchronized (lifecycle) {
            if (committed || finished) {
                return false;
            }
            abort.cancel();
            if (progress.status().isActive()) {
                progress.status(MigrationStatus.CANCELLING);
            }
            if (connecting && thread != null) {
                thread.interrupt();
            }
        }
        notice("machine '{}': migration to {} cancelled", machine.name(), uri);
        closeChannels();
        return true;
    }

    private void status(MigrationStatus s) {
        synchronized (lifecycle) {
            if (progress.status() == MigrationStatus.CANCELLING && !s.isFinal()) {
                return;
            }
            progress.status(s);
        }
    }

    @Override
    public void run() {
        RunState before = null;
        CompletableFuture<Void> stop = null;
        long downtimeStart = 0;
        MultifdSender senders = null;
        boolean ambiguous = false;
        try {
            status(MigrationStatus.SETUP);
            ChannelSettings cs = new ChannelSettings(Duration.ofMillis(initial.ioTimeoutMs()), Duration.ofMillis(initial.ioTimeoutMs()));
            Duration io = cs.ioTimeout();
            long setupAt = System.nanoTime();
            MigrationChannel ch = connect(cs);
            long connectedAt = System.nanoTime();
            RemoteRamWriter remote = ch.role(RemoteRamWriter.class).orElse(null);
            int dataChannels = multifd && remote == null ? initial.multifdChannels() : 0;
            List<Migratable> states = machine.states();
            MachineConfig config = machine.onMainLoop(() -> MachineConfig.of(machine, states, dataChannels, remote != null));
            // pairs the data channels with this stream; not a secret (whoever reaches the port can send anything),
            // so no SecureRandom, whose first use costs ~100 ms
            long sessionHi = ThreadLocalRandom.current().nextLong();
            long sessionLo = System.nanoTime();
            main = new StreamOutput(ch, progress.transferred);
            main.streamHeader(Wire.KIND_MAIN, 0, sessionHi, sessionLo);
            byte[] cfg = config.encode();
            main.record(Wire.CONFIG, 0, 0, cfg.length, crc(cfg));
            main.bytes(cfg);
            main.flush();
            long configSentAt = System.nanoTime();
            returnPath = new ReturnPath(ch, abort);
            returnPath.start();
            byte[] token = await(returnPath.accepted, io, "accept the configuration");
            long acceptedAt = System.nanoTime();
            if (remote != null) {
                remote.open(blocks, token);
            }
            log.debug("machine '{}': set-up: connected in {} us, configuration sent {} us later, accepted {} us later, ready {} us later", machine.name(),
                    (connectedAt - setupAt) / 1000, (configSentAt - connectedAt) / 1000, (acceptedAt - configSentAt) / 1000, (System.nanoTime() - acceptedAt) / 1000);
            List<StreamOutput> dataOutputs = new ArrayList<>();
            for (int i = 0; i < dataChannels; i++) {
                StreamOutput o = new StreamOutput(connect(cs), progress.multifdBytes);
                o.streamHeader(Wire.KIND_DATA, i, sessionHi, sessionLo);
                o.flush();
                dataOutputs.add(o);
            }
            RateLimiter limiter = new RateLimiter(() -> parameters.get().maxBandwidth(), abort);
            if (dataChannels > 0) {
                senders = new MultifdSender(dataOutputs, blocks, limiter, progress, abort);
            }
            PageScanner scanner = new PageScanner(blocks, main, remote, limiter, progress, this::keepAlive);
            RamSender ram = new RamSender(blocks);
            progress.setupDone();
            bytesAtLastSync = progress.sent();
            status(MigrationStatus.ACTIVE);
            notice("machine '{}': migrating to {} ({} bytes of RAM{}{})", machine.name(), uri, progress.totalRam,
                    dataChannels > 0 ? ", " + dataChannels + " data channels" : "", remote != null ? ", one-sided RAM writes" : "");

            ram.setup();
            progress.remainingPages(ram.pending());
            long deadline = initial.timeoutMs() > 0 ? System.nanoTime() + initial.timeoutMs() * 1_000_000 : 0;
            long pass = 1;
            // once RAM would switch over: the drives write back what the guest wrote so far while it still runs, and
            // the passes go on until that is done, so that the stop's flush (QEMU's bdrv_flush_all, inside the
            // downtime) only has what the guest wrote since (16 MiB written back took 17-27 ms of a 45-97 ms downtime)
            CompletableFuture<Void> preFlush = Boolean.parseBoolean(System.getProperty(PRE_FLUSH, "true")) ? null
                    : CompletableFuture.completedFuture(null);
            long preFlushStart = 0;
            while (true) {
                long passStart = System.nanoTime();
                sendPass(ram, scanner, senders, remote, pass, false);
                beforeSync.run();
                long newly = ram.sync();
                long syncs = progress.synced(newly);
                progress.remainingPages(ram.pending());
                machine.emit("MIGRATION_PASS", Map.of("pass", syncs));
                autoConverge(newly);
                pass++;
                long remaining = ram.pending() * Wire.PAGE;
                double threshold = progress.bandwidthBytesPerMs() * parameters.get().downtimeLimitMs();
                log.debug("machine '{}': pass {} done in {} us, {} bytes dirty, switch-over below {} bytes", machine.name(), syncs,
                        (System.nanoTime() - passStart) / 1000, remaining, (long) threshold);
                if (remaining == 0 || remaining < threshold) {
                    if (preFlush == null) {
                        preFlush = machine.flushDrives();
                        preFlushStart = preFlush.isDone() ? 0 : System.nanoTime();
                    }
                    // without writable drives it is done already; with little to write back, soon, and no pass is added
                    if (awaitQuietly(preFlush, MIN_PASS_NANOS)) {
                        if (preFlushStart != 0) {
                            log.debug("machine '{}': drives flushed before the stop in {} us{}", machine.name(), (System.nanoTime() - preFlushStart) / 1000,
                                    preFlush.isCompletedExceptionally() ? " (failed; the stop's flush will say why)" : "");
                        }
                        break;
                    }
                    if (System.nanoTime() - preFlushStart > PRE_FLUSH_WAIT_NANOS) {
                        log.warn("machine '{}': the drives' flush has not completed after {} s; stopping the VM anyway (the stop waits for it)",
                                machine.name(), PRE_FLUSH_WAIT_NANOS / 1_000_000_000L);
                        break;
                    }
                    abort.check();
                    continue;
                }
                if (deadline != 0 && System.nanoTime() - deadline > 0) {
                    throw new IllegalStateException("the migration did not converge within x-timeout (" + initial.timeoutMs() + " ms): " + remaining
                            + " bytes still dirty after " + syncs + " passes at " + (long) (progress.bandwidthBytesPerMs() * 1000)
                            + " bytes/s (raise downtime-limit or max-bandwidth, or enable auto-converge)");
                }
                napIfQuick(passStart);
            }

            // completion: the main loop stops the VM; this thread only waits
            before = machine.runState();
            downtimeStart = System.nanoTime();
            stop = machine.vmStopForceState(RunState.FINISH_MIGRATE);
            // device state is saved on the main loop as soon as the VM stopped, while this thread sends the last pages
            CompletableFuture<List<byte[]>> saving = states.isEmpty() ? CompletableFuture.completedFuture(List.of())
                    : stop.thenApplyAsync(v -> saveStates(states), machine.mainLoop());
            awaitStop(stop);
            long stoppedAt = System.nanoTime();
            abort.check();
            progress.stopped();
            status(MigrationStatus.DEVICE);
            limiter.disable();
            long newly = ram.sync();
            machine.emit("MIGRATION_PASS", Map.of("pass", progress.synced(newly)));
            progress.remainingPages(ram.pending());
            sendPass(ram, scanner, senders, remote, pass, true);
            main.record(Wire.RAM_DONE, 0, 0, pass, 0);
            List<byte[]> saved = savedStates(saving);
            for (int i = 0; i < saved.size(); i++) {
                byte[] b = saved.get(i);
                main.record(Wire.DEVICE, 0, i + 1, b.length, ((long) states.get(i).stateVersion() << 32) | crc(b));
                main.bytes(b);
            }
            long pages = scanner.pagesInStream() + (senders == null ? 0 : senders.pagesInStream());
            main.record(Wire.EOF, 0, 0, main.headerCrc(), pages);
            main.flush();
            long sentAt = System.nanoTime();
            long[] loadedAt = new long[1];
            returnPath.commitOnLoaded(() -> {
                loadedAt[0] = System.nanoTime();
                synchronized (lifecycle) {
                    abort.check();
                    main.record(Wire.COMMIT, 0, 0, 0, 0);
                    main.flush();
                    committed = true;
                }
            });
            try {
                await(returnPath.loaded, io, "load the state");
            } catch (IOException | RuntimeException e) {
                synchronized (lifecycle) {
                    ambiguous = committed;
                }
                throw e;
            }
            long runningAt;
            try {
                runningAt = Math.max(loadedAt[0], await(returnPath.running, io, "confirm it runs"));
            } catch (ReturnPath.DestinationFailed e) {
                throw e;
            } catch (IOException e) {
                ambiguous = true;
                throw e;
            }
            long downtime = (runningAt - downtimeStart) / 1_000_000;
            progress.downtime(downtime);
            resetThrottle();
            machine.setRunState(RunState.POSTMIGRATE).join();
            status(MigrationStatus.COMPLETED);
            notice("machine '{}': migration to {} completed in {} ms, {} bytes; downtime {} us (stop {}, last pages and device state {}, "
                    + "destination loading {}, hand-over and start {})", machine.name(), uri, progress.elapsedMs(), progress.sent(),
                    (runningAt - downtimeStart) / 1000, (stoppedAt - downtimeStart) / 1000, (sentAt - stoppedAt) / 1000, (loadedAt[0] - sentAt) / 1000,
                    (runningAt - loadedAt[0]) / 1000);
        } catch (Throwable t) {
            fail(t, stop, before, ambiguous);
        } finally {
            if (returnPath != null) {
                returnPath.stopping();
            }
            closeChannels();
            if (senders != null) {
                senders.close();
            }
            resetThrottle();
            synchronized (lifecycle) {
                finished = true;
            }
            done.complete(progress.info());
        }
    }

    private MigrationChannel connect(ChannelSettings cs) throws IOException {
        synchronized (lifecycle) {
            abort.check();
            connecting = true;
        }
        MigrationChannel ch;
        try {
            ch = transport.connect(address, cs);
        } finally {
            synchronized (lifecycle) {
                connecting = false;
                Thread.interrupted();
            }
        }
        channels.add(ch);
        if (abort.isAborted()) {
            closeQuietly(ch);
            abort.check();
        }
        return ch;
    }

    private void sendPass(RamSender ram, PageScanner scanner, MultifdSender senders, RemoteRamWriter remote, long pass, boolean last) throws IOException {
        if (senders != null) {
            ram.dispatchPass(senders, progress, this::keepAlive);
            senders.sync(pass, last, this::keepAlive);
        } else {
            if (remote != null && pass > 1) {
                // a zero page of the last pass, still in the stream, must not land on a page written one-sided in
                // this one: the first one-sided write of this pass waits until the destination applied the last
                scanner.beforeNextRemoteWrite(() -> {
                    main.flush();
                    returnPath.awaitApplied(pass - 1, initial.ioTimeoutMs());
                });
            }
            ram.sendPass(scanner, abort, progress);
            if (remote != null) {
                remote.flush();
            }
            main.record(Wire.PASS_END, last ? Wire.FLAG_FINAL : 0, 0, pass, main.headerCrc());
            if (!last) {
                // the destination applies the pass (and, with one-sided writes, says APPLIED) while this side
                // syncs the bitmap, instead of after the stop, inside the downtime
                main.flush();
            }
        }
    }

    /** Writes a NOP on the main channel when it was quiet for a while, so that the destination's read timeout measures a live source. */
    private void keepAlive() {
        if (main.idleNanos() < KEEPALIVE_NANOS) {
            return;
        }
        try {
            main.record(Wire.NOP, 0, 0, 0, 0);
            main.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Waits for the stop to finish, keeping the channel alive. Never gives up on it: the stop always completes (or rolls back). */
    private void awaitStop(CompletableFuture<Void> stop) throws Throwable {
        while (true) {
            try {
                stop.get(50, TimeUnit.MILLISECONDS);
                return;
            } catch (TimeoutException e) {
                if (!abort.isAborted()) {
                    try {
                        keepAlive();
                    } catch (UncheckedIOException io) {
                        abort.abort(describe(io.getCause()));
                    }
                }
            } catch (InterruptedException e) {
                abort.abort("interrupted");
            } catch (ExecutionException e) {
                throw new StopFailed(unwrap(e));
            }
        }
    }

    /** The VM could not be stopped; the machine rolled the stop back itself. */
    private static final class StopFailed extends Exception {
        private static final long serialVersionUID = 1L;

        StopFailed(Throwable cause) {
            super("stopping the VM failed: " + describe(cause), cause);
        }
    }

    private static Throwable unwrap(Throwable t) {
        while ((t instanceof ExecutionException || t instanceof java.util.concurrent.CompletionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    private <T> T await(CompletableFuture<T> f, Duration timeout, String what) throws IOException {
        try {
            return f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new SocketTimeoutException("the destination did not " + what + " within " + timeout.toMillis() + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the destination to " + what);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof ReturnPath.DestinationFailed df) {
                throw df;
            }
            throw new IOException("the connection to the destination was lost while waiting for it to " + what + ": " + describe(c), c);
        }
    }

    private static List<byte[]> savedStates(CompletableFuture<List<byte[]>> saving) throws InterruptedException {
        try {
            return saving.get();
        } catch (ExecutionException e) {
            Throwable c = unwrap(e);
            if (c instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException("saving device state failed: " + describe(c), c);
        }
    }

    private List<byte[]> saveStates(List<Migratable> states) {
        List<byte[]> out = new ArrayList<>();
        for (Migratable m : states) {
            StateWriter w = new StateWriter();
            try {
                m.saveState(w);
            } catch (RuntimeException e) {
                throw new IllegalStateException("saving section '" + m.stateName() + "' failed: " + describe(e), e);
            }
            byte[] b = w.toByteArray();
            if (b.length > Wire.MAX_DEVICE) {
                throw new IllegalStateException("section '" + m.stateName() + "' is " + b.length + " bytes, more than " + Wire.MAX_DEVICE);
            }
            out.add(b);
        }
        return out;
    }

    /** QEMU's auto-converge: the guest dirtied more than the threshold share of what was sent, in two syncs, so slow the vCPUs down a step. */
    private void autoConverge(long newlyDirty) {
        long sent = progress.sent();
        long xfer = sent - bytesAtLastSync;
        bytesAtLastSync = sent;
        if (!autoConverge) {
            return;
        }
        MigrationParameters p = parameters.get();
        if (newlyDirty * Wire.PAGE > xfer * p.throttleTriggerThreshold() / 100 && ++dirtyRateHighCount >= 2) {
            dirtyRateHighCount = 0;
            throttle = throttle == 0 ? p.cpuThrottleInitial() : Math.min(throttle + p.cpuThrottleIncrement(), p.maxCpuThrottle());
            for (Vcpu v : machine.vcpus()) {
                v.setThrottle(throttle);
            }
            progress.throttle(throttle);
            notice("machine '{}': auto-converge throttles the vCPUs to {}%", machine.name(), throttle);
        }
    }

    private void resetThrottle() {
        if (throttle != 0) {
            throttle = 0;
            for (Vcpu v : machine.vcpus()) {
                v.setThrottle(0);
            }
            progress.throttle(-1);
        }
    }

    /** Waits for {@code f} at most {@code nanos}; whether it is done (normally or not). */
    private static boolean awaitQuietly(CompletableFuture<?> f, long nanos) throws InterruptedException {
        try {
            f.get(nanos, TimeUnit.NANOSECONDS);
        } catch (ExecutionException | TimeoutException e) {
            // done with a failure, or not yet
        }
        return f.isDone();
    }

    private void napIfQuick(long passStart) {
        long left = MIN_PASS_NANOS - (System.nanoTime() - passStart);
        if (left > 0) {
            LockSupport.parkNanos(left);
            abort.check();
        }
    }

    private void fail(Throwable t, CompletableFuture<Void> stop, RunState before, boolean ambiguous) {
        Throwable cause = t instanceof UncheckedIOException u ? u.getCause() : t;
        boolean cancelled = abort.isCancelled();
        String reason;
        if (cancelled) {
            reason = "cancelled";
        } else {
            if (returnPath != null && returnPath.destinationError() == null && cause instanceof IOException && !(cause instanceof SocketTimeoutException)) {
                // the destination may have said why before it closed the connection
                returnPath.awaitEnd(1_000);
            }
            String d = returnPath == null ? null : returnPath.destinationError();
            if (d != null) {
                reason = "destination failed: " + d;
            } else if (cause instanceof Abort.Aborted a) {
                reason = a.getMessage();
            } else {
                reason = describe(cause);
            }
        }
        if (returnPath != null) {
            returnPath.stopping();
        }
        closeChannels();
        resetThrottle();
        if (ambiguous) {
            reason = "the connection was lost after the hand-over (COMMIT) and before the destination confirmed that it runs: " + reason
                    + "; the VM stays stopped here (postmigrate): make sure it is not running at the destination before resuming it here";
            try {
                machine.setRunState(RunState.POSTMIGRATE).join();
            } catch (RuntimeException e) {
                reason += "; entering postmigrate failed: " + describe(unwrap(e));
            }
            log.error("machine '{}': migration to {} failed: {}", machine.name(), uri, reason);
        } else {
            if (stop != null && !(cause instanceof StopFailed)) {
                reason = resume(stop, before, reason);
            }
            if (cancelled) {
                notice("machine '{}': migration to {} cancelled; the VM is {}", machine.name(), uri, machine.runState());
            } else {
                log.error("machine '{}': migration to {} failed, the VM is {} again: {}", machine.name(), uri, machine.runState(), reason);
            }
        }
        progress.error(reason);
        status(cancelled && !ambiguous ? MigrationStatus.CANCELLED : MigrationStatus.FAILED);
    }

    /** Brings the VM back to the run state it had before the stop. */
    private String resume(CompletableFuture<Void> stop, RunState before, String reason) {
        try {
            stop.join();
        } catch (RuntimeException e) {
            return reason; // the stop failed and the machine rolled it back itself
        }
        try {
            if (before == RunState.RUNNING) {
                machine.vmStart().join();
            } else {
                try {
                    machine.setRunState(before).join();
                } catch (RuntimeException e) {
                    if (!(unwrap(e) instanceof IllegalRunStateTransitionException)) {
                        throw e;
                    }
                    machine.setRunState(RunState.PAUSED).join();
                }
            }
        } catch (RuntimeException e) {
            return reason + "; resuming the VM failed too: " + describe(unwrap(e));
        }
        return reason;
    }

    private void closeChannels() {
        for (MigrationChannel c : channels) {
            closeQuietly(c);
        }
    }

    private static void closeQuietly(MigrationChannel c) {
        try {
            c.close();
        } catch (IOException | RuntimeException e) {
            log.debug("closing {} failed: {}", c.peer(), e.toString());
        }
    }

    /** CRC-32C of {@code b}, as an unsigned value. */
    static long crc(byte[] b) {
        CRC32C c = new CRC32C();
        c.update(b);
        return c.getValue();
    }

    static String describe(Throwable t) {
        return t.getMessage() != null ? t.getMessage() : t.getClass().getSimpleName();
    }
}
