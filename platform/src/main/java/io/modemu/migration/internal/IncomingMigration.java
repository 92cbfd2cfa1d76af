package io.modemu.migration.internal;

import io.modemu.machine.Machine;
import io.modemu.machine.RamBlock;
import io.modemu.machine.RunState;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.Migratable;
import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationListener;
import io.modemu.migration.MigrationParameters;
import io.modemu.migration.MigrationStatus;
import io.modemu.migration.MigrationStreamException;
import io.modemu.migration.RemoteRamTarget;
import io.modemu.migration.StateReader;
import java.io.EOFException;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Phaser;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The destination of a migration, run by its own thread ({@code modemu-migration-incoming}): accepts
 * the connection(s), checks the configuration before anything touches guest RAM, loads RAM (main
 * channel and data channels), collects the device sections and loads them only once the whole stream
 * was read and checked, answers LOADED, waits for COMMIT, then starts the VM (or leaves it paused
 * without autostart) and answers RUNNING.
 *
 * <p>The stream is never trusted: every record is checked before use and a failure names its section.
 * On any failure the destination tells the source why (ERROR), discards what it received and either
 * ends in {@code failed} or, with {@link IncomingOptions#keepWaiting()}, waits for the next connection.
 * Discarding needs no undo: guest RAM is overwritten in full by the next attempt, whose first pass
 * carries every page; device state is loaded only once the whole stream was read and checked (a
 * failure before that leaves it untouched), and a failure after it (a device refusing its section, or
 * the hand-over) leaves state that the next attempt loads over again. The VM is never started with a
 * partial state: only a COMMIT after a complete load starts it.
 *
 * <p>Thread-safe: {@link #cancel()} and {@link #info()} may be called from any thread.
 */
public final class IncomingMigration implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(IncomingMigration.class);
    private static final long LINGER_NANOS = 2_000_000_000L;

    private final Machine machine;
    private final MigrationListener listener;
    private final String uri;
    private final IncomingOptions options;
    private final MigrationParameters parameters;
    private final List<RamBlock> blocks;
    private final CompletableFuture<MigrationInfo> done = new CompletableFuture<>();
    private final List<MigrationChannel> channels = new CopyOnWriteArrayList<>();
    private volatile MigrationProgress progress;
    private volatile boolean cancelled;

    public IncomingMigration(Machine machine, MigrationListener listener, String uri, IncomingOptions options, MigrationParameters parameters) {
        this.machine = machine;
        this.listener = listener;
        this.uri = uri;
        this.options = options;
        this.parameters = parameters;
        this.blocks = machine.memory().blocks();
        this.progress = newProgress();
        progress.status(MigrationStatus.SETUP);
    }

    private MigrationProgress newProgress() {
        return new MigrationProgress(machine, machine.memory().totalSize(), parameters.downtimeLimitMs());
    }

    /** INFO for a machine's migration; DEBUG for the engine's warm-up machines, which operators did not ask for. */
    private void notice(String format, Object... arguments) {
        log.atLevel(EngineWarmup.noticeLevel(machine)).log(format, arguments);
    }

    public void start() {
        Thread.ofPlatform().name("modemu-migration-incoming").daemon(true).start(this);
    }

    public MigrationInfo info() {
        return progress.info();
    }

    public MigrationStatus status() {
        return progress.status();
    }

    /** Completes with the final info: completed, or failed (without keep-waiting, or after a cancel). */
    public CompletableFuture<MigrationInfo> completion() {
        return done;
    }

    /** Stops listening and abandons a migration in progress (it fails; the VM is not started). Any thread. */
    public void cancel() {
        cancelled = true;
        closeQuietly(listener);
        for (MigrationChannel c : channels) {
            closeQuietly(c);
        }
    }

    @Override
    public void run() {
        try {
            while (true) {
                if (attempt() || !options.keepWaiting() || cancelled) {
                    return;
                }
                notice("machine '{}': discarded the failed incoming migration; waiting for the next one on {}", machine.name(), uri);
                MigrationProgress next = newProgress();
                progress = next;
                next.status(MigrationStatus.SETUP);
            }
        } catch (Throwable t) {
            log.error("machine '{}': incoming migration ended unexpectedly", machine.name(), t);
            progress.error(String.valueOf(t.getMessage()));
            progress.status(MigrationStatus.FAILED);
        } finally {
            closeQuietly(listener);
            done.complete(progress.info());
        }
    }

    private static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;

        Failure(String message) {
            super(message, null, false, false);
        }
    }

    /** One incoming migration; returns whether it completed. */
    private boolean attempt() {
        MigrationProgress p = progress;
        MigrationChannel main = null;
        StreamOutput out = null;
        RemoteRamTarget target = null;
        List<DataReceiver> receivers = new ArrayList<>();
        String section = "stream header";
        try {
            main = listener.accept(null);
            channels.add(main);
            if (!EngineWarmup.owns(machine)) {
                EngineWarmup.yieldToMigration();
            }
            if (cancelled) {
                throw new Failure("cancelled");
            }
            notice("machine '{}': incoming migration from {}", machine.name(), main.peer());
            Duration io = Duration.ofMillis(parameters.ioTimeoutMs());
            StreamInput in = new StreamInput(main, p.transferred, io);
            out = new StreamOutput(main, new LongAdder());
            long acceptedAt = System.nanoTime();
            long[] session = header(in, Wire.KIND_MAIN);

            section = "configuration";
            in.next();
            long configAt = System.nanoTime();
            if (in.type != Wire.CONFIG || in.flags != 0) {
                throw new MigrationStreamException("section 'configuration': expected a CONFIG record first, got " + Wire.typeName(in.type));
            }
            if (in.b > Wire.MAX_CONFIG) {
                throw new MigrationStreamException("section 'configuration': " + in.b + " bytes long, more than " + Wire.MAX_CONFIG);
            }
            byte[] cfgBytes = in.bytes((int) in.b);
            if (OutgoingMigration.crc(cfgBytes) != in.c) {
                throw new MigrationStreamException("section 'configuration': checksum mismatch (the stream is corrupt)");
            }
            MachineConfig config = MachineConfig.decode(cfgBytes);
            long decodedAt = System.nanoTime();
            List<Migratable> states = machine.states();
            Map<String, Migratable> byName = new LinkedHashMap<>();
            for (Migratable m : states) {
                byName.put(m.stateName(), m);
            }
            MachineConfig mine = machine.onMainLoop(() -> MachineConfig.of(machine, states, 0, false));
            List<String> problems = config.mismatches(mine, byName);
            if (!problems.isEmpty()) {
                throw new Failure("configuration mismatch: " + String.join("; ", problems));
            }
            long checkedAt = System.nanoTime();
            byte[] token = new byte[0];
            if (config.remoteRam()) {
                target = main.role(RemoteRamTarget.class).orElse(null);
                if (target == null) {
                    throw new Failure("configuration mismatch: the source writes RAM one-sided, but this end of " + uri + " cannot take one-sided writes");
                }
                token = target.expose(blocks);
                if (token.length > Wire.MAX_TOKEN) {
                    throw new Failure("the transport's RAM token is " + token.length + " bytes, more than " + Wire.MAX_TOKEN);
                }
            }
            out.record(Wire.ACCEPT, 0, 0, token.length, 0);
            out.bytes(token);
            out.flush();
            log.debug("machine '{}': set-up: header and configuration arrived {} us after the connection, decoded in {} us, checked in {} us, "
                    + "accepted {} us later", machine.name(), (configAt - acceptedAt) / 1000, (decodedAt - configAt) / 1000, (checkedAt - decodedAt) / 1000,
                    (System.nanoTime() - checkedAt) / 1000);

            RamLoader loader = new RamLoader(blocks, p, config.remoteRam());
            Phaser barrier = new Phaser(config.dataChannels());
            boolean[] connected = new boolean[config.dataChannels()];
            for (int i = 0; i < config.dataChannels(); i++) {
                section = "data channels";
                receivers.add(acceptDataChannel(session, connected, loader, barrier, io));
            }
            p.setupDone();
            p.status(MigrationStatus.ACTIVE);
            for (DataReceiver r : receivers) {
                r.start();
            }

            section = "ram";
            long activeAt = System.nanoTime();
            long ramDoneAt = 0;
            long lastPass = 0;
            boolean finalPass = false;
            boolean ramDone = false;
            Map<Integer, byte[]> deviceData = new LinkedHashMap<>();
            Map<Integer, Integer> deviceVersions = new LinkedHashMap<>();
            while (true) {
                in.next();
                int type = in.type;
                if (type == Wire.NOP) {
                    continue;
                }
                if (ramDone && (type == Wire.PAGES || type == Wire.ZERO || type == Wire.PASS_END || type == Wire.RAM_DONE)) {
                    throw new MigrationStreamException("section '" + section + "': " + Wire.typeName(type) + " record after the end of RAM");
                }
                if (type == Wire.EOF) {
                    section = "end of stream";
                    if (!ramDone) {
                        throw new MigrationStreamException("section 'ram': the stream ended (EOF) before the end of RAM");
                    }
                    if (in.flags != 0 || in.a != 0 || in.b != in.headerCrcBefore) {
                        throw new MigrationStreamException("section 'end of stream': the record headers do not match their checksum (the stream is corrupt)");
                    }
                    long sections = config.sections().size() - 1;
                    if (deviceData.size() != sections) {
                        throw new MigrationStreamException("section 'end of stream': " + deviceData.size() + " device sections received, the source listed "
                                + sections);
                    }
                    if (in.c != loader.pages()) {
                        throw new MigrationStreamException("section 'end of stream': the source sent " + in.c + " pages in the stream, " + loader.pages()
                                + " arrived");
                    }
                    break;
                }
                switch (type) {
                    case Wire.PAGES -> {
                        requireNoDataChannels(config, type);
                        loader.pages(in, "");
                    }
                    case Wire.ZERO -> {
                        requireNoDataChannels(config, type);
                        loader.zero(in, "", lastPass + 1);
                    }
                    case Wire.PASS_END -> {
                        requireNoDataChannels(config, type);
                        if (finalPass || in.b != lastPass + 1 || (in.flags & ~Wire.FLAG_FINAL) != 0) {
                            throw new MigrationStreamException("section 'ram': PASS_END for pass " + in.b + (finalPass ? " after the final pass" : "")
                                    + ", expected pass " + (lastPass + 1));
                        }
                        if (in.a != 0 || in.c != in.headerCrcBefore) {
                            throw new MigrationStreamException("section 'ram': the record headers do not match their checksum (the stream is corrupt)");
                        }
                        lastPass = in.b;
                        finalPass = (in.flags & Wire.FLAG_FINAL) != 0;
                        if (config.remoteRam() && !finalPass) {
                            // the source's next pass waits for this before it writes pages one-sided; after the final
                            // pass there is none, and a message less lies inside the downtime
                            out.record(Wire.APPLIED, 0, 0, lastPass, 0);
                            out.flush();
                        }
                    }
                    case Wire.RAM_DONE -> {
                        if (in.flags != 0 || in.a != 0 || in.c != 0 || config.dataChannels() == 0 && (!finalPass || lastPass != in.b)) {
                            throw new MigrationStreamException("section 'ram': RAM_DONE for pass " + in.b + " without its final PASS_END");
                        }
                        awaitReceivers(receivers, io);
                        ramDoneAt = System.nanoTime();
                        ramDone = true;
                        section = "device state";
                    }
                    case Wire.DEVICE -> {
                        if (!ramDone) {
                            throw new MigrationStreamException("section 'ram': a device section arrived before the end of RAM");
                        }
                        MachineConfig.Section s = config.section(in.a);
                        if (s == null || s.iterative()) {
                            throw new MigrationStreamException("section 'device state': DEVICE record for section id " + in.a
                                    + ", which the configuration does not list as a device section");
                        }
                        section = s.name();
                        int version = (int) (in.c >>> 32);
                        if (version != s.version()) {
                            throw new MigrationStreamException("section '" + s.name() + "': version " + version + " in the stream, " + s.version()
                                    + " in the configuration");
                        }
                        if (in.b > Wire.MAX_DEVICE || in.flags != 0) {
                            throw new MigrationStreamException("section '" + s.name() + "': " + in.b + " bytes long (at most " + Wire.MAX_DEVICE + ")");
                        }
                        long crc = in.c & 0xffff_ffffL;
                        byte[] data = in.bytes((int) in.b);
                        if (OutgoingMigration.crc(data) != crc) {
                            throw new MigrationStreamException("section '" + s.name() + "': checksum mismatch (the stream is corrupt)");
                        }
                        if (deviceData.put(s.id(), data) != null) {
                            throw new MigrationStreamException("section '" + s.name() + "': appears twice");
                        }
                        deviceVersions.put(s.id(), version);
                    }
                    case Wire.COMMIT -> throw new MigrationStreamException("section '" + section + "': COMMIT before the end of the stream");
                    default -> throw new MigrationStreamException("section '" + section + "': unknown record type " + Wire.typeName(type)
                            + " (a corrupt stream, or a newer source)");
                }
            }

            section = "device state";
            if (!deviceData.isEmpty()) {
                machine.onMainLoop(() -> {
                    for (Map.Entry<Integer, byte[]> e : deviceData.entrySet()) {
                        MachineConfig.Section s = config.section(e.getKey());
                        Migratable m = byName.get(s.name());
                        StateReader r = new StateReader(s.name(), e.getValue());
                        try {
                            m.loadState(r, deviceVersions.get(e.getKey()));
                        } catch (MigrationStreamException ex) {
                            throw ex;
                        } catch (RuntimeException ex) {
                            throw new MigrationStreamException("section '" + s.name() + "': loading failed: " + OutgoingMigration.describe(ex), ex);
                        }
                        r.expectEnd();
                    }
                    return null;
                });
            }
            out.record(Wire.LOADED, 0, 0, 0, 0);
            out.flush();
            long loadedAt = System.nanoTime();

            section = "hand-over";
            while (true) {
                in.next();
                if (in.isBare(Wire.COMMIT)) {
                    break;
                }
                if (!in.isBare(Wire.NOP)) {
                    throw new MigrationStreamException("section 'hand-over': expected COMMIT, got " + Wire.typeName(in.type) + " (flags " + in.flags + ", a "
                            + in.a + ", b " + in.b + ", c " + in.c + ")");
                }
            }
            long commitAt = System.nanoTime();
            if (target != null) {
                withdraw(target, blocks);
                target = null;
            }
            long[] runningAt = new long[1];
            (options.autostart() ? machine.vmStart() : machine.setRunState(RunState.PAUSED)).whenComplete((v, t) -> runningAt[0] = System.nanoTime())
                    .join();
            try {
                // how long ago the VM started: the source subtracts it, so the downtime ends when the VM runs here
                out.record(Wire.RUNNING, 0, 0, 0, Math.max(0, System.nanoTime() - runningAt[0]));
                out.flush();
            } catch (IOException e) {
                // the VM runs here now, so the migration is complete; the source, left without an answer, stays stopped
                log.warn("machine '{}': the VM runs, but the source could not be told: {}", machine.name(), e.getMessage());
            }
            log.debug("machine '{}': RAM {} us, device state {} us, hand-over {} us, start {} us", machine.name(), (ramDoneAt - activeAt) / 1000,
                    (loadedAt - ramDoneAt) / 1000, (commitAt - loadedAt) / 1000, (runningAt[0] - commitAt) / 1000);
            p.status(MigrationStatus.COMPLETED);
            notice("machine '{}': incoming migration from {} completed; the VM is {}", machine.name(), main.peer(), machine.runState());
            return true;
        } catch (Throwable t) {
            String reason = describe(t, section);
            if (cancelled && !(t instanceof Failure)) {
                reason = "cancelled (" + reason + ")";
            }
            if (foreseen(t)) {
                log.error("machine '{}': incoming migration failed: {}", machine.name(), reason);
            } else {
                // no check of the stream caught this one: a bug here, not just a bad stream
                log.error("machine '{}': incoming migration failed on an unforeseen error: {}", machine.name(), reason, t);
            }
            p.error(reason);
            if (out != null) {
                tellSource(out, main, reason, receivers);
            }
            p.status(MigrationStatus.FAILED);
            return false;
        } finally {
            if (target != null) {
                withdraw(target, blocks);
            }
            for (MigrationChannel c : channels) {
                closeQuietly(c);
            }
            channels.clear();
            for (DataReceiver r : receivers) {
                try {
                    r.join(5_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    private static void requireNoDataChannels(MachineConfig config, int type) {
        if (config.dataChannels() > 0) {
            throw new MigrationStreamException("section 'ram': " + Wire.typeName(type) + " record on the main channel, which carries no pages with "
                    + config.dataChannels() + " data channels");
        }
    }

    private long[] header(StreamInput in, int kind) throws IOException {
        long[] h = in.streamHeader();
        if (h[0] != Wire.MAGIC) {
            throw new MigrationStreamException("section 'stream header': bad magic 0x" + Long.toHexString(h[0]) + " (not a Modemu migration stream)");
        }
        if (h[1] != Wire.VERSION) {
            throw new MigrationStreamException("section 'stream header': stream version " + h[1] + ", this build reads version " + Wire.VERSION);
        }
        if (h[2] != kind) {
            throw new MigrationStreamException("section 'stream header': a " + (h[2] == Wire.KIND_DATA ? "data" : "kind " + h[2]) + " channel where the "
                    + (kind == Wire.KIND_MAIN ? "main" : "data") + " channel was expected");
        }
        return new long[] {h[3], h[4], h[5]};
    }

    /**
     * Ends one-sided writes into guest RAM. They left no trace in the dirty bitmaps, so every page is
     * marked: nothing may later take a page for zero because its bit is clear (this machine's next
     * incoming attempt, or its own outgoing migration once it runs).
     */
    private static void withdraw(RemoteRamTarget target, List<RamBlock> blocks) {
        target.withdraw();
        for (RamBlock b : blocks) {
            b.dirty().markAll();
        }
    }

    private DataReceiver acceptDataChannel(long[] session, boolean[] connected, RamLoader loader, Phaser barrier, Duration io) throws IOException {
        while (true) {
            MigrationChannel c = listener.accept(io);
            channels.add(c);
            StreamInput in = new StreamInput(c, progress.multifdBytes, io);
            long[] h = header(in, Wire.KIND_DATA);
            if (h[1] != session[1] || h[2] != session[2]) {
                log.warn("machine '{}': closed a data channel from {} of another migration session", machine.name(), c.peer());
                closeQuietly(c);
                continue;
            }
            int index = (int) h[0];
            if (index >= connected.length) {
                throw new MigrationStreamException("section 'data channels': channel index " + index + " outside 0.." + (connected.length - 1));
            }
            if (connected[index]) {
                throw new MigrationStreamException("section 'data channels': channel " + index + " connected twice");
            }
            connected[index] = true;
            return new DataReceiver(index, c, in, loader, barrier);
        }
    }

    /** Waits until every data channel received the final pass, failing if one failed or all went quiet for the io timeout. */
    private void awaitReceivers(List<DataReceiver> receivers, Duration io) throws Throwable {
        while (true) {
            boolean all = true;
            long quiet = Long.MAX_VALUE;
            for (DataReceiver r : receivers) {
                if (r.failure() != null) {
                    throw r.failure();
                }
                if (!r.finished()) {
                    all = false;
                    quiet = Math.min(quiet, r.idleNanos());
                    r.join(10);
                }
            }
            if (all) {
                return;
            }
            if (quiet > io.toNanos()) {
                throw new SocketTimeoutException("no page data from the source for " + io.toMillis() + " ms on any data channel");
            }
        }
    }

    /** Whether {@code t} is a failure the destination expects: a bad or cut stream, a refused configuration, a lost or silent peer. */
    private static boolean foreseen(Throwable t) {
        if (t instanceof java.util.concurrent.CompletionException && t.getCause() != null) {
            t = t.getCause();
        }
        return t instanceof MigrationStreamException || t instanceof Failure || t instanceof IOException;
    }

    private static String describe(Throwable t, String section) {
        if (t instanceof MigrationStreamException || t instanceof Failure) {
            return t.getMessage();
        }
        if (t instanceof EOFException) {
            return "section '" + section + "': the stream ended early (truncated, or the source went away)";
        }
        if (t instanceof java.util.concurrent.CompletionException && t.getCause() != null) {
            t = t.getCause();
            if (t instanceof MigrationStreamException) {
                return t.getMessage();
            }
        }
        return "section '" + section + "': " + OutgoingMigration.describe(t);
    }

    /** Sends ERROR and keeps reading (discarding) for a moment so that the source gets to read it before the connection closes. */
    private void tellSource(StreamOutput out, MigrationChannel main, String reason, List<DataReceiver> receivers) {
        try {
            byte[] m = reason.getBytes(StandardCharsets.UTF_8);
            if (m.length > Wire.MAX_ERROR) {
                m = java.util.Arrays.copyOf(m, Wire.MAX_ERROR);
            }
            out.record(Wire.ERROR, 0, 0, m.length, 0);
            out.bytes(m);
            out.flush();
        } catch (IOException | RuntimeException e) {
            return;
        }
        for (MigrationChannel c : channels) {
            if (c != main) {
                closeQuietly(c);
            }
        }
        ByteBuffer sink = ByteBuffer.allocateDirect(64 << 10);
        long end = System.nanoTime() + LINGER_NANOS;
        try {
            while (true) {
                long left = end - System.nanoTime();
                if (left <= 0) {
                    return;
                }
                sink.clear();
                if (main.read(sink, Duration.ofNanos(left)) < 0) {
                    return;
                }
            }
        } catch (IOException | RuntimeException e) {
            // the source closed: it has read the error or never will
        }
    }

    private static void closeQuietly(java.io.Closeable c) {
        try {
            c.close();
        } catch (IOException | RuntimeException e) {
            log.debug("closing failed: {}", e.toString());
        }
    }
}
