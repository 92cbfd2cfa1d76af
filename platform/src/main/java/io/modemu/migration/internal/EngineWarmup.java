package io.modemu.migration.internal;

import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.migration.MigrationChannel;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Pays, once per process and on a background thread, the one-time costs of the engine's set-up
 * path: class initialisation, the first use of JDK facilities (a random session id, CRC32C, direct
 * staging buffers) and the first run of the stream code, which resolves its constant pools and
 * call sites. Without it a migration's set-up paid them between connecting and sending its
 * configuration: 5–15 ms on the reference machine, as much as the rest of the set-up.
 *
 * <p>It writes a stream (header, configuration, pages, zero pages, end) into an in-memory channel
 * and reads it back. It touches no machine, no guest RAM and no network.
 */
public final class EngineWarmup {
    private static final Logger log = LoggerFactory.getLogger(EngineWarmup.class);
    private static final AtomicBoolean STARTED = new AtomicBoolean();

    private EngineWarmup() {
    }

    /** Starts the warm-up unless it ran already in this process. Any thread; returns at once. */
    public static void startOnce() {
        if (STARTED.compareAndSet(false, true)) {
            Thread.ofPlatform().daemon().name("modemu-migration warm-up").priority(Thread.MIN_PRIORITY).start(EngineWarmup::run);
        }
    }

    private static void run() {
        long t0 = System.nanoTime();
        try {
            roundTrip();
            long t1 = System.nanoTime();
            runStates();
            log.debug("migration engine warmed up in {} us (stream), {} us (run states)", (t1 - t0) / 1000, (System.nanoTime() - t1) / 1000);
        } catch (IOException | RuntimeException e) {
            // only a lost head start: the first migration pays these costs itself
            log.debug("migration engine warm-up stopped: {}", e.toString());
        }
    }

    /**
     * Starts, stops into {@code finish-migrate} and starts again a machine of its own (no vCPUs, one page
     * of RAM), so that a migration's downtime, which begins with the source's first stop and ends with
     * the destination's first start, does not run that code for the first time in the process.
     */
    static void runStates() {
        try (Machine m = Machine.builder().name("migration-warm-up").ram(Wire.PAGE).vcpus(0).build()) {
            m.vmStart().join();
            m.vmStopForceState(RunState.FINISH_MIGRATE).join();
            m.vmStart().join();
            m.vmStop(RunState.PAUSED).join();
        }
    }

    /** Writes a small stream through the engine's writer and reads it back through its reader. */
    static void roundTrip() throws IOException {
        MachineConfig config = new MachineConfig("virt", List.of(new MachineConfig.Block("ram", 2L * Wire.PAGE)),
                List.of(new MachineConfig.Section(0, Wire.RAM_SECTION, Wire.RAM_VERSION, true, Map.of()),
                        new MachineConfig.Section(1, "warm-up", 1, false, Map.of("setting", "value"))),
                List.of(new MachineConfig.DeviceEntry("dev0", "warm-up")), List.of(new MachineConfig.Drive("drive0", Wire.PAGE, false)), 0, false);
        MemoryChannel ch = new MemoryChannel();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pages = arena.allocate(2L * Wire.PAGE, Wire.PAGE);
            pages.fill((byte) 0x5a);
            StreamOutput out = new StreamOutput(ch, new LongAdder());
            out.streamHeader(Wire.KIND_MAIN, 0, ThreadLocalRandom.current().nextLong(), System.nanoTime());
            byte[] cfg = config.encode();
            out.record(Wire.CONFIG, 0, 0, cfg.length, OutgoingMigration.crc(cfg));
            out.bytes(cfg);
            out.record(Wire.PAGES, 0, 0, 1, 0);
            out.pages(pages.asSlice(0, Wire.PAGE));
            out.record(Wire.ZERO, 0, 0, 1, Wire.PAGE);
            out.record(Wire.EOF, 0, 0, out.headerCrc(), 1);
            out.flush();

            StreamInput in = new StreamInput(ch, new LongAdder(), Duration.ofSeconds(1));
            in.streamHeader();
            in.next();
            byte[] back = in.bytes((int) in.b);
            if (OutgoingMigration.crc(back) != in.c) {
                throw new IOException("the configuration read back differs from the one written");
            }
            MachineConfig decoded = MachineConfig.decode(back);
            decoded.mismatches(config, Map.of());
            in.next();
            in.into(pages.asSlice(Wire.PAGE, Wire.PAGE));
            in.next();
            in.next();
            if (in.type != Wire.EOF) {
                throw new IOException("expected the end of the warm-up stream, got " + Wire.typeName(in.type));
            }
        }
    }

    /** A channel that reads back what was written to it. */
    private static final class MemoryChannel implements MigrationChannel {
        private ByteBuffer data = ByteBuffer.allocate(64 * 1024);

        @Override
        public String peer() {
            return "warm-up";
        }

        @Override
        public void write(ByteBuffer... srcs) {
            for (ByteBuffer s : srcs) {
                if (data.remaining() < s.remaining()) {
                    ByteBuffer bigger = ByteBuffer.allocate(Math.max(data.capacity() * 2, data.position() + s.remaining()));
                    data.flip();
                    bigger.put(data);
                    data = bigger;
                }
                data.put(s);
            }
        }

        @Override
        public int read(ByteBuffer dst, Duration timeout) {
            data.flip();
            if (!data.hasRemaining()) {
                data.compact();
                return -1;
            }
            int n = Math.min(dst.remaining(), data.remaining());
            dst.put(dst.position(), data, data.position(), n);
            dst.position(dst.position() + n);
            data.position(data.position() + n);
            data.compact();
            return n;
        }

        @Override
        public void close() {
        }
    }
}
