package io.modemu.migration.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import ch.qos.logback.classic.Level;
import io.modemu.aio.AioContext;
import io.modemu.fuzz.LogWatch;
import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.LiveMigration;
import io.modemu.migration.Migratable;
import io.modemu.migration.MigrationCapability;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationParameters;
import io.modemu.migration.MigrationStatus;
import io.modemu.migration.StateReader;
import io.modemu.migration.StateWriter;
import io.modemu.migration.testkit.ScriptedTransport;
import io.modemu.plugin.Contributions;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * The migration fuzz targets' harness, shared by the Jazzer fuzz test and the jqwik properties: one
 * input against a real destination machine (the incoming stream), or a real source machine talking to
 * a destination that answers garbage (the return path), each with every property checked.
 *
 * <p>Destination properties: the incoming migration ends within a bound; it completes only for a
 * stream that carries at least CONFIG, RAM_DONE, EOF and COMMIT, and then the VM is paused; otherwise it
 * fails with a message naming the section (or the configuration mismatch), the VM is still in
 * {@code inmigrate}, and device state is untouched unless the failure came once it was loaded (a
 * device refusing its section, or the hand-over); no page of guest RAM that no PAGES or ZERO record names was written (each page holds a
 * canary); no event loop saw an uncaught error and no failure was one the destination did not foresee
 * (logged with a stack trace); the machine closes within a bound.
 *
 * <p>Source properties: whatever the destination answers, the migration ends within a bound; unless
 * the answers hold a full ACCEPT, LOADED, RUNNING hand-over (then the source is in
 * {@code postmigrate}) or a LOADED after which the source committed and then lost the destination (then
 * it stays stopped in {@code postmigrate}, saying so), the source runs again with RAM and device state
 * intact.
 */
final class MigrationFuzzing {
    static final long RAM = 1L << 20;
    static final int PAGES = (int) (RAM / Wire.PAGE);
    static final ScriptedTransport TRANSPORT = new ScriptedTransport();
    private static final long BOUND_SECONDS = 30;
    private static final Pattern NAMES_THE_SECTION = Pattern.compile("(section '[^']+': |configuration mismatch: ).+", Pattern.DOTALL);
    private static final AtomicLong NAMES = new AtomicLong();
    private static Machine source;
    private static byte[] sourceRam;

    private MigrationFuzzing() {
    }

    /** A device state section with a few fields, loaded all-or-nothing as a device must. */
    static final class Register implements Migratable {
        final String name;
        long value;
        String label;
        boolean armed;

        Register(String name, long value, String label) {
            this.name = name;
            this.value = value;
            this.label = label;
        }

        @Override
        public String stateName() {
            return name;
        }

        @Override
        public int stateVersion() {
            return 2;
        }

        @Override
        public int minimumStateVersion() {
            return 1;
        }

        @Override
        public Map<String, String> settings() {
            return Map.of("width", "64");
        }

        @Override
        public void saveState(StateWriter out) {
            out.u64(value).string(label).bool(armed);
        }

        @Override
        public void loadState(StateReader in, int version) {
            long v = in.u64("value");
            String l = in.string("label", 64);
            boolean a = version >= 2 && in.bool("armed");
            value = v;
            label = l;
            armed = a;
        }

        String state() {
            return value + "/" + label + "/" + armed;
        }
    }

    // ---- logs: failures nobody foresaw are logged with their stack trace ----

    private static final LogWatch LOGS = LogWatch.on("io.modemu.migration", Level.ERROR);

    private static void assertNoUncaughtErrors(Machine m, String what) {
        List<AioContext> loops = new ArrayList<>(m.iothreads().values());
        loops.add(m.mainLoop());
        m.vcpus().forEach(v -> loops.add(v.context()));
        for (AioContext c : loops) {
            assertThat(c.uncaughtErrors()).as("%s: uncaught errors on %s: %s", what, c, c.firstUncaughtError()).isZero();
        }
    }

    // ---- machines ----

    private static Machine machine(String name, RunState initial) {
        Machine m = Machine.builder().name(name).ram(RAM).vcpus(1).initialState(initial)
                .contributions(Contributions.builder().add(TRANSPORT).build()).build();
        m.onMainLoop(() -> {
            m.registerState(new Register("reg-a", 0xa0a0_a0a0L, "destination a"));
            m.registerState(new Register("reg-b", 0xb0b0_b0b0L, "destination b"));
            return null;
        });
        return m;
    }

    private static Register register(Machine m, int i) {
        return (Register) m.states().get(i);
    }

    /** The canary of page {@code p}: a pattern no stream of the recorded source carries. */
    static byte[] canaryRam() {
        byte[] b = new byte[(int) RAM];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) (0xc3 ^ (i >>> 12) ^ (i * 7));
        }
        return b;
    }

    private static final byte[] CANARY = canaryRam();

    private static void closeWithin(Machine m, String what) {
        try {
            CompletableFuture.runAsync(m::close).get(BOUND_SECONDS, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            fail(what + ": the machine did not close within " + BOUND_SECONDS + " s");
        } catch (Exception e) {
            throw new AssertionError(what + ": closing the machine failed", e);
        }
    }

    private static MigrationInfo within(CompletableFuture<MigrationInfo> f, LiveMigration m, String what) {
        try {
            return f.get(BOUND_SECONDS, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            m.cancel();
            throw new AssertionError(what + ": the migration did not end within " + BOUND_SECONDS + " s (a hang); " + m.info());
        } catch (Exception e) {
            throw new AssertionError(what + ": waiting for the migration failed", e);
        }
    }

    // ---- the incoming stream ----

    /** One fuzz input (see {@link StreamModel}) replayed into a fresh destination; every destination property checked. Returns its outcome. */
    static MigrationInfo incoming(byte[] input) {
        LOGS.reset();
        List<byte[]> channels = StreamModel.channels(input);
        if ((StreamModel.mode(input) & StreamModel.MODE_REPAIR) != 0) {
            StreamModel.repair(channels);
        }
        String name = "in-" + NAMES.incrementAndGet();
        String what = "input " + name + " (" + input.length + " bytes, " + channels.size() + " channel(s))";
        TRANSPORT.incoming(name, channels);
        Machine dst = machine("dst", RunState.INMIGRATE);
        try {
            dst.memory().write(Machine.RAM_BASE, CANARY);
            String before = register(dst, 0).state() + " " + register(dst, 1).state();
            LiveMigration lm = new LiveMigration(dst);
            lm.setParameters(MigrationParameters.defaults().withIoTimeoutMs(1000));
            lm.incoming("scripted:" + name, new IncomingOptions(false, false));
            MigrationInfo info = within(lm.completion(), lm, what);
            assertNoUncaughtErrors(dst, what);
            LOGS.assertNone(what);
            String desc = info.errorDesc();
            if (info.status() == MigrationStatus.COMPLETED) {
                assertThat(StreamModel.looksComplete(channels.getFirst())).as("%s completed without CONFIG, RAM_DONE, EOF and COMMIT", what).isTrue();
                assertThat(dst.runState()).as(what).isEqualTo(RunState.PAUSED);
            } else {
                assertThat(info.status()).as("%s: %s", what, desc).isEqualTo(MigrationStatus.FAILED);
                assertThat(desc).as(what).isNotNull().matches(NAMES_THE_SECTION)
                        .doesNotContain("IndexOutOfBounds", "NullPointer", "NegativeArraySize", "OutOfMemory", "ClassCast", "IllegalArgument",
                                "IllegalState", "Arithmetic", "UnsupportedOperation", "BufferUnderflow", "BufferOverflow");
                assertThat(dst.runState()).as("%s: the VM never starts after a failure (%s)", what, desc).isEqualTo(RunState.INMIGRATE);
                if (!desc.startsWith("section 'reg-") && !desc.startsWith("section 'hand-over'")) {
                    assertThat(register(dst, 0).state() + " " + register(dst, 1).state()).as("%s: device state after '%s'", what, desc)
                            .isEqualTo(before);
                }
            }
            boolean[] named = StreamModel.namedPages(channels, PAGES);
            MemorySegment ram = dst.memory().blocks().getFirst().segment();
            MemorySegment canary = MemorySegment.ofArray(CANARY);
            for (int p = 0; p < PAGES; p++) {
                if (!named[p]) {
                    long off = (long) p * Wire.PAGE;
                    assertThat(ram.asSlice(off, Wire.PAGE).mismatch(canary.asSlice(off, Wire.PAGE)))
                            .as("%s: page %d, which no record names, was written (%s)", what, p, desc).isEqualTo(-1L);
                }
            }
            return info;
        } finally {
            closeWithin(dst, what);
            TRANSPORT.forget(name);
        }
    }

    // ---- the return path ----

    private static Machine source() {
        if (source == null) {
            Machine m = machine("src", RunState.PRELAUNCH);
            byte[] ram = new byte[(int) RAM];
            java.util.SplittableRandom r = new java.util.SplittableRandom(7);
            for (int p = 0; p < 6; p++) {
                int page = 1 + 37 * p;
                for (int i = 0; i < Wire.PAGE; i++) {
                    ram[page * Wire.PAGE + i] = (byte) r.nextInt();
                }
            }
            m.memory().write(Machine.RAM_BASE, ram);
            register(m, 0).value = 0x1234_5678_9abcL;
            register(m, 0).label = "source a";
            register(m, 1).armed = true;
            m.vmStart().join();
            source = m;
            sourceRam = ram;
        }
        return source;
    }

    private static void retireSource() {
        Machine m = source;
        source = null;
        closeWithin(m, "retiring the source");
    }

    /** One fuzz input as everything a destination answers a real, running source; every source property checked. */
    static MigrationInfo returnPath(byte[] replies) {
        LOGS.reset();
        Machine src = source();
        String name = "out-" + NAMES.incrementAndGet();
        String what = "replies " + name + " (" + replies.length + " bytes)";
        String before = register(src, 0).state() + " " + register(src, 1).state();
        TRANSPORT.replies(name, replies);
        LiveMigration lm = new LiveMigration(src);
        try {
            lm.setParameters(MigrationParameters.defaults().withIoTimeoutMs(1000).withMaxBandwidth(0));
            lm.migrate("scripted:" + name);
            MigrationInfo info = within(lm.completion(), lm, what);
            assertNoUncaughtErrors(src, what);
            LOGS.assertNone(what);
            List<StreamModel.Record> answers = StreamModel.records(replies, 0);
            boolean loaded = answers.stream().anyMatch(r -> r.type() == Wire.LOADED);
            if (info.status() == MigrationStatus.COMPLETED) {
                assertThat(answers.stream().map(StreamModel.Record::type).toList()).as("%s: completed without ACCEPT, LOADED and RUNNING", what)
                        .contains(Wire.ACCEPT, Wire.LOADED, Wire.RUNNING);
                assertThat(src.runState()).as(what).isEqualTo(RunState.POSTMIGRATE);
                retireSource();
            } else if (src.runState() == RunState.POSTMIGRATE) {
                assertThat(loaded).as("%s: the source stopped for good without a LOADED from the destination: %s", what, info.errorDesc()).isTrue();
                assertThat(info.errorDesc()).as(what).contains("after the hand-over (COMMIT)");
                retireSource();
            } else {
                assertThat(info.status()).as(what).isIn(MigrationStatus.FAILED, MigrationStatus.CANCELLED);
                assertThat(info.errorDesc()).as(what).isNotBlank();
                assertThat(src.runState()).as("%s: the source runs again after '%s'", what, info.errorDesc()).isEqualTo(RunState.RUNNING);
                assertThat(src.memory().blocks().getFirst().segment().mismatch(MemorySegment.ofArray(sourceRam))).as("%s: source RAM intact", what)
                        .isEqualTo(-1L);
                assertThat(register(src, 0).state() + " " + register(src, 1).state()).as("%s: source device state intact", what).isEqualTo(before);
            }
            return info;
        } finally {
            TRANSPORT.forget(name);
        }
    }

    // ---- seeds: real streams from a real source ----

    /** The source's streams (main channel, then data channels) of a complete migration, against a destination that plays along. */
    static List<byte[]> recordSource(boolean multifd) {
        LOGS.reset();
        Machine src = source();
        String name = "record-" + NAMES.incrementAndGet();
        ByteArrayReplies ok = new ByteArrayReplies().record(Wire.ACCEPT, 0).record(Wire.LOADED, 0).record(Wire.RUNNING, 0);
        TRANSPORT.replies(name, ok.bytes());
        LiveMigration lm = new LiveMigration(src);
        lm.setParameters(MigrationParameters.defaults().withMaxBandwidth(0));
        if (multifd) {
            lm.setCapability(MigrationCapability.MULTIFD, true);
        }
        lm.migrate("scripted:" + name);
        MigrationInfo info = within(lm.completion(), lm, "recording");
        assertThat(info.status()).as("recording: %s", info).isEqualTo(MigrationStatus.COMPLETED);
        List<byte[]> streams = TRANSPORT.recorded();
        retireSource();
        TRANSPORT.forget(name);
        return streams;
    }

    /** Replies a destination sends, built record by record. */
    static final class ByteArrayReplies {
        private final java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();

        ByteArrayReplies record(int type, long b) {
            java.nio.ByteBuffer h = java.nio.ByteBuffer.allocate(Wire.HEADER);
            h.put((byte) type).put((byte) 0).putShort((short) 0).putInt((int) b).putLong(0);
            out.writeBytes(h.array());
            return this;
        }

        ByteArrayReplies bytes(byte[] b) {
            out.writeBytes(b);
            return this;
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }

    /** The checked-in recorded streams among the inputs of the Jazzer fuzz test {@code method} (files {@code recorded*}). */
    static List<byte[]> seeds(String method) {
        Path dir = Path.of("src", "test", "resources", "io", "modemu", "migration", "internal", "IncomingMigrationFuzzTestInputs", method);
        try (var files = Files.list(dir)) {
            List<byte[]> out = new ArrayList<>();
            for (Path p : files.filter(f -> f.getFileName().toString().startsWith("recorded")).sorted().toList()) {
                out.add(Files.readAllBytes(p));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
