package io.modemu.virtio.blk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import io.modemu.aio.DeterministicScheduler;
import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.machine.GuestMemory;
import io.modemu.machine.Machine;
import io.modemu.machine.RamBlock;
import io.modemu.machine.RunState;
import io.modemu.virtio.Virtio;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.LoggerFactory;

/**
 * The virtio-blk fuzz target's harness, shared by the Jazzer fuzz test and the jqwik properties: a
 * {@link GuestProgram} run by the test thread as the vCPU against a virtio-blk device on a real
 * machine (all loops on a deterministic scheduler, seeded from the program, so an input replays
 * exactly), then every property checked.
 *
 * <p>The program writes registers (any offset, size and value), descriptors (any length, flags,
 * next), available-ring words, request headers and data, notifies queues, stops and starts the VM,
 * lets the loops run, and makes the disk fail. Guest RAM is laid out so that a canary area is out of
 * every descriptor's reach, by construction: descriptor tables and indirect tables live in area D,
 * available rings in area A, used rings in area U, buffers in area B, and every guest-physical
 * address the program gives (a queue register, a descriptor's address) that falls inside RAM is moved
 * into its area (an address outside RAM is kept as it is). Nothing the device writes can become an
 * address it later follows: it writes only used rings (U) and buffers (B), and reads addresses only
 * from D, which only the program writes.
 *
 * <p>Properties: no exception escapes an MMIO handler (the vCPU) or reaches any event loop, and
 * nothing is logged as an error with a stack trace; the loops go idle once the program ends (no
 * livelock); the canary is intact (no write outside what descriptors name); the VM stops (every
 * request drained: nothing in flight in the device or its block backend) and starts again; and a
 * driver reset brings the device back to serve a request.
 */
final class VirtioBlkFuzzing {
    static final long RAM = Harness.RAM;
    /** Areas, as offsets into RAM: descriptor and indirect tables, available rings, used rings, the canary, buffers. */
    static final long D = 0, A = 0x8_0000, U = 0xC_0000, CANARY = 0x10_0000, B = 0x30_0000, END = RAM;
    /** The largest ring of each kind (queue size 1024), rounded up to pages: a ring moved into an area fits in it. */
    static final long D_RESERVE = 16 << 10, A_RESERVE = 4 << 10, U_RESERVE = 12 << 10;
    static final int[] QUEUE_SIZES = {16, 64, 256, 1024};
    static final String[] POLICIES = {"report", "ignore", "stop", "enospc"};
    static final long[] LATENCIES = {0, 0, 1_000, 200_000};
    private static final int MAX_OPS = 256;
    private static final long IDLE_STEPS = 2_000_000;
    private static final List<String> UNFORESEEN = new CopyOnWriteArrayList<>();

    private VirtioBlkFuzzing() {
    }

    /** The device and drive a program asks for (its first two bytes). */
    record Config(int queueSize, int numQueues, boolean iothread, String werror, String rerror, int logicalBlockSize, boolean readOnly,
                  long latencyNs) {
        static Config read(GuestProgram.Reader in) {
            int a = in.u8();
            int b = in.u8();
            String rerror = POLICIES[(b >>> 2) & 3];
            return new Config(QUEUE_SIZES[a & 3], 1 + ((a >>> 2) & 1), (a & 8) != 0, POLICIES[b & 3], rerror.equals("enospc") ? "report" : rerror,
                    (a & 16) != 0 ? 4096 : 512, (a & 32) != 0, LATENCIES[(b >>> 4) & 3]);
        }
    }

    /**
     * From now on, an error logged with a stack trace by the device ({@code io.modemu.virtio}) is a finding.
     * Levels and other output stay as they are: other tests share this JVM.
     */
    static synchronized void captureLogs() {
        Logger virtio = (Logger) LoggerFactory.getLogger("io.modemu.virtio");
        if (virtio.getAppender("fuzz") == null) {
            AppenderBase<ILoggingEvent> a = new AppenderBase<>() {
                @Override
                protected void append(ILoggingEvent e) {
                    if (e.getLevel() == Level.ERROR && e.getThrowableProxy() != null) {
                        UNFORESEEN.add(e.getFormattedMessage() + ": " + e.getThrowableProxy().getClassName() + ": " + e.getThrowableProxy().getMessage());
                    }
                }
            };
            a.setName("fuzz");
            a.setContext(virtio.getLoggerContext());
            a.start();
            virtio.addAppender(a);
        }
        // what other tests logged before this input is theirs
        UNFORESEEN.clear();
    }

    /** A guest-physical address inside RAM moved into {@code [from, to - reserve]}; one outside RAM as it is. Keeps the offset's low 12 bits. */
    static long into(long gpa, long from, long to, long reserve) {
        if (gpa < Machine.RAM_BASE || gpa >= Machine.RAM_BASE + RAM) {
            return gpa;
        }
        long off = gpa - Machine.RAM_BASE;
        if (off >= from && off <= to - reserve) {
            return gpa;
        }
        return Machine.RAM_BASE + from + off % (to - reserve - from);
    }

    /** The interpreter's view of one queue's registers, as the program wrote them. */
    private static final class QueueMirror {
        int size;
        long desc;
        long avail;
        long used;
        int availIdx;
    }

    private static final class Run {
        final Harness h;
        final Config config;
        final GuestMemory mem;
        final long base;
        final QueueMirror[] queues;
        int queueSel;

        Run(Harness h, Config config) {
            this.h = h;
            this.config = config;
            this.mem = h.machine.memory();
            this.base = h.device.slot().base();
            this.queues = new QueueMirror[config.numQueues()];
            for (int i = 0; i < queues.length; i++) {
                queues[i] = new QueueMirror();
            }
        }

        QueueMirror selected() {
            return queueSel >= 0 && queueSel < queues.length ? queues[queueSel] : null;
        }

        void write(int offset, int size, long value) {
            long v = value;
            if (size == 4 && offset < Virtio.R_CONFIG) {
                v &= 0xffff_ffffL;
                v = switch (offset) {
                    case Virtio.R_QUEUE_DESC_LOW -> into(v, D, A, D_RESERVE);
                    case Virtio.R_QUEUE_DRIVER_LOW -> into(v, A, U, A_RESERVE);
                    case Virtio.R_QUEUE_DEVICE_LOW -> into(v, U, CANARY, U_RESERVE);
                    default -> v;
                };
                QueueMirror q = selected();
                switch (offset) {
                    case Virtio.R_QUEUE_SEL -> queueSel = (int) Math.min(v, Integer.MAX_VALUE);
                    case Virtio.R_QUEUE_NUM -> {
                        if (q != null) {
                            q.size = (int) Math.min(v, Integer.MAX_VALUE);
                        }
                    }
                    case Virtio.R_QUEUE_DESC_LOW -> {
                        if (q != null) {
                            q.desc = (q.desc & ~0xffff_ffffL) | v;
                        }
                    }
                    case Virtio.R_QUEUE_DESC_HIGH -> {
                        if (q != null) {
                            q.desc = (q.desc & 0xffff_ffffL) | v << 32;
                        }
                    }
                    case Virtio.R_QUEUE_DRIVER_LOW -> {
                        if (q != null) {
                            q.avail = (q.avail & ~0xffff_ffffL) | v;
                            q.availIdx = 0;
                        }
                    }
                    case Virtio.R_QUEUE_DEVICE_LOW -> {
                        if (q != null) {
                            q.used = (q.used & ~0xffff_ffffL) | v;
                        }
                    }
                    case Virtio.R_QUEUE_DEVICE_HIGH -> {
                        if (q != null) {
                            q.used = (q.used & 0xffff_ffffL) | v << 32;
                        }
                    }
                    case Virtio.R_QUEUE_DRIVER_HIGH -> {
                        if (q != null) {
                            q.avail = (q.avail & 0xffff_ffffL) | v << 32;
                        }
                    }
                    default -> {
                    }
                }
            }
            h.machine.mmio().write(base + offset, size, v);
        }

        int read(int offset) {
            return (int) h.machine.mmio().read(base + offset, 4);
        }

        /** Lets the loops run a bounded number of steps. */
        void run(long steps) {
            h.scheduler.runUntilIdle(steps);
        }

        /** Writes {@code bytes} at RAM offset {@code off}, clipped to RAM. */
        void ram(long off, byte[] bytes) {
            int n = (int) Math.min(bytes.length, RAM - off);
            if (n > 0) {
                mem.write(Machine.RAM_BASE + off, java.util.Arrays.copyOf(bytes, n));
            }
        }
    }

    /**
     * What a program achieved, for tests of the seeds.
     *
     * @param needsReset whether the device set DEVICE_NEEDS_RESET
     * @param completed  used elements the device published, every queue
     */
    record Outcome(boolean needsReset, int completed) {
    }

    /** Runs one program against a fresh device and checks every property. */
    static Outcome run(byte[] program) {
        captureLogs();
        GuestProgram.Reader in = new GuestProgram.Reader(program);
        Config config = Config.read(in);
        long seed = in.u8();
        String what = "program of " + program.length + " bytes, " + config + ", seed " + seed;
        Harness h = machine(config, seed, RunState.PRELAUNCH);
        try {
            h.start();
            byte[] canary = new byte[(int) (B - CANARY)];
            java.util.Arrays.fill(canary, (byte) 0xa5);
            h.machine.memory().write(Machine.RAM_BASE + CANARY, canary);
            Run r = new Run(h, config);
            int ops = 0;
            while (in.hasMore() && ops < MAX_OPS) {
                int op = in.u8() % GuestProgram.OPS;
                try {
                    step(r, op, in);
                } catch (RuntimeException e) {
                    throw new AssertionError(what + ": operation " + ops + " (" + op + ") threw on the vCPU: " + e, e);
                }
                ops++;
            }
            if (!h.scheduler.runUntilIdle(IDLE_STEPS)) {
                fail(what + ": the loops are still busy after " + IDLE_STEPS + " steps with the guest quiet (a livelock)");
            }
            assertThat(h.uncaughtErrors()).as("%s: errors escaped into a loop; first: %s", what, h.firstUncaught()).isZero();
            assertNoUnforeseenErrors(what);
            assertThat(MemorySegment.ofArray(canary).mismatch(h.machine.memory().slice(Machine.RAM_BASE + CANARY, canary.length)))
                    .as("%s: the canary, which no descriptor can name, was written", what).isEqualTo(-1L);

            int completed = 0;
            for (QueueMirror q : r.queues) {
                if (h.machine.memory().isRam(q.used, 4)) {
                    completed += h.machine.memory().readU16(q.used + 2);
                }
            }
            Outcome outcome = new Outcome((r.read(Virtio.R_STATUS) & Virtio.STATUS_DEVICE_NEEDS_RESET) != 0, completed);

            awaitOrHang(h, h.machine.vmStop(RunState.PAUSED), what, "the VM stop (drain)");
            assertThat(h.device.inFlight()).as("%s: requests in flight in the device after the stop", what).isZero();
            assertThat(h.device.backend().inFlight()).as("%s: requests in flight in the block backend after the stop", what).isZero();
            migrate(h, config, seed, what);
            // the disk heals before the VM runs again: a request parked by werror/rerror=stop is retried at the
            // start, and a fault the program armed and did not use up would stop the VM again, the reset below with it
            h.disks.clearFaults();
            awaitOrHang(h, h.machine.vmStart(), what, "the VM start");
            assertThat(h.machine.runState()).as(what).isEqualTo(RunState.RUNNING);

            servesAfterAReset(h, config, what + ": on the source");
            assertNoUnforeseenErrors(what);
            return outcome;
        } finally {
            h.close();
        }
    }

    /** The fuzzed machine of {@code config}: a device over a test disk, on a deterministic scheduler. */
    private static Harness machine(Config config, long seed, RunState initial) {
        Harness h = Harness.create(new DeterministicScheduler(seed), new TestDiskDriver(), 1, RAM, initial);
        h.drive("d0", "size=1M,latency-ns=" + config.latencyNs() + (config.readOnly() ? ",read-only=on" : ""));
        h.device("drive=d0,serial=fuzz,queue-size=" + config.queueSize() + ",num-queues=" + config.numQueues() + ",werror=" + config.werror()
                + ",rerror=" + config.rerror() + ",logical_block_size=" + config.logicalBlockSize() + (config.iothread() ? ",iothread=io0" : ""));
        return h;
    }

    /**
     * What a migration of the stopped machine does with the device, whatever state the program left it
     * in (broken, parked requests, queues half set up): its state saves, loads into a fresh destination
     * holding the same RAM, and there a driver's reset and bring-up get a request served.
     */
    private static void migrate(Harness src, Config config, long seed, String what) {
        byte[] state;
        try {
            state = src.await(src.machine.mainLoop().submit(() -> {
                io.modemu.migration.StateWriter w = new io.modemu.migration.StateWriter();
                src.device.saveState(w);
                return w.toByteArray();
            }));
        } catch (RuntimeException e) {
            throw new AssertionError(what + ": the stopped device's state could not be saved: " + e, e);
        }
        Harness dst = machine(config, seed, RunState.INMIGRATE);
        try {
            RamBlock a = src.machine.memory().blocks().getFirst();
            RamBlock b = dst.machine.memory().blocks().getFirst();
            MemorySegment.copy(a.segment(), 0, b.segment(), 0, a.size());
            try {
                dst.await(dst.machine.mainLoop().submit(() -> {
                    dst.device.loadState(new io.modemu.migration.StateReader(dst.device.stateName(), state), VirtioBlkDevice.STATE_VERSION);
                    return null;
                }));
            } catch (RuntimeException e) {
                throw new AssertionError(what + ": the destination refused the state the source saved: " + e, e);
            }
            awaitOrHang(dst, dst.machine.vmStart(), what, "the destination's start");
            servesAfterAReset(dst, config, what + ": on the migration's destination");
        } finally {
            dst.close();
        }
    }

    /** A driver's reset and bring-up on the running machine {@code h}, then a request that must complete with S_OK. */
    private static void servesAfterAReset(Harness h, Config config, String where) {
        VirtioBlkGuest g = h.guest(VirtioBlkGuest.Setup.defaults().withQueueSize(Math.min(16, config.queueSize())));
        Completions c = new Completions();
        g.submit(0, VirtioBlkGuest.T_FLUSH, 0, 0, 0, false, 1);
        g.kick(0);
        c.awaitCount(h, g, 0, 1);
        assertThat(c.status(1)).as("%s: a request after a driver reset", where).isEqualTo(VirtioBlkGuest.S_OK);
        assertThat(h.uncaughtErrors()).as("%s: errors escaped into a loop; first: %s", where, h.firstUncaught()).isZero();
    }

    /** Waits for a stop or start; a stop whose flush failed (the program made the disk fail) still stopped the VM, as documented. */
    private static void awaitOrHang(Harness h, java.util.concurrent.CompletableFuture<Void> f, String what, String step) {
        try {
            h.await(f);
        } catch (IllegalStateException e) {
            throw new AssertionError(what + ": " + step + " never completed: " + e.getMessage(), e);
        } catch (java.util.concurrent.CompletionException e) {
            String m = String.valueOf(e.getCause() == null ? e.getMessage() : e.getCause().getMessage());
            if (!m.startsWith("flush of drive")) {
                throw new AssertionError(what + ": " + step + " failed: " + m, e);
            }
            assertThat(h.machine.isRunning()).as("%s: the VM after a stop whose flush failed", what).isFalse();
        }
    }

    private static void assertNoUnforeseenErrors(String what) {
        if (!UNFORESEEN.isEmpty()) {
            List<String> found = new ArrayList<>(UNFORESEEN);
            UNFORESEEN.clear();
            fail(what + ": an error nobody foresaw was logged: " + found);
        }
    }

    private static void step(Run r, int op, GuestProgram.Reader in) {
        switch (op) {
            case GuestProgram.MMIO_WRITE -> {
                int offset = in.u16() & 0x1ff;
                int size = new int[] {4, 1, 2, 8}[in.u8() & 3];
                r.write(offset, size, in.u64());
            }
            case GuestProgram.MMIO_READ -> {
                int offset = in.u16() & 0x1ff;
                r.h.machine.mmio().read(r.base + offset, new int[] {4, 1, 2, 8}[in.u8() & 3]);
            }
            case GuestProgram.DESCRIPTOR -> {
                long slot = in.u16() % ((A - D) / 16);
                long addr = in.u64();
                long len = in.u32();
                int flags = in.u16();
                int next = in.u16();
                if ((flags & Virtio.DESC_F_INDIRECT) != 0) {
                    addr = into(addr, D, A, 0);
                    if (addr >= Machine.RAM_BASE && addr < Machine.RAM_BASE + RAM) {
                        // an indirect table is read as descriptors: whole ones, inside D
                        addr &= ~15L;
                        len = Math.min(len, Machine.RAM_BASE + A - addr);
                    }
                } else {
                    addr = into(addr, B, END, 0);
                }
                byte[] d = new byte[16];
                GuestProgram.le(d).putLong(addr).putInt((int) len).putShort((short) flags).putShort((short) next);
                r.ram(D + slot * 16, d);
            }
            case GuestProgram.AVAIL_WORD -> {
                long off = A + (in.u16() * 2L) % (U - A);
                int v = in.u16();
                r.ram(off, new byte[] {(byte) v, (byte) (v >>> 8)});
            }
            case GuestProgram.AVAIL_PUSH -> {
                int q = in.u8() % r.queues.length;
                int head = in.u16();
                QueueMirror m = r.queues[q];
                long off = m.avail - Machine.RAM_BASE;
                if (m.size > 0 && Integer.bitCount(m.size) == 1 && m.size <= 1024 && off >= A && off + 6 + 2L * m.size <= U && (off & 1) == 0) {
                    GuestMemory mem = r.mem;
                    mem.writeU16(m.avail + 4 + 2L * (m.availIdx & (m.size - 1)), head);
                    m.availIdx = (m.availIdx + 1) & 0xffff;
                    mem.writeU16Release(m.avail + 2, m.availIdx);
                }
            }
            case GuestProgram.NOTIFY -> r.write(Virtio.R_QUEUE_NOTIFY, 4, in.u8());
            case GuestProgram.BUFFER -> {
                long off = B + in.u32() % (END - B);
                r.ram(off, in.bytes(in.u8()));
            }
            case GuestProgram.HEADER -> {
                long off = B + (in.u32() % (END - B)) & ~7L;
                byte[] hdr = new byte[32];
                GuestProgram.le(hdr).putInt((int) in.u32()).putInt(0).putLong(in.u64()).putLong(in.u64()).putInt((int) in.u32()).putInt((int) in.u32());
                r.ram(off, hdr);
            }
            case GuestProgram.BRING_UP -> bringUp(r, in.u64(), in.u16(), in.u64(), in.u64(), in.u64());
            case GuestProgram.STOP_START -> {
                awaitOrHang(r.h, r.h.machine.vmStop(RunState.PAUSED), "a program", "a VM stop");
                awaitOrHang(r.h, r.h.machine.vmStart(), "a program", "a VM start");
            }
            case GuestProgram.RUN -> r.run(1 + in.u8() * 20L);
            case GuestProgram.DISK_FAULT -> {
                TestDiskDriver.Op kind = TestDiskDriver.Op.values()[in.u8() % TestDiskDriver.Op.values().length];
                int errno = new int[] {5, 28, 22, 95}[in.u8() & 3];
                r.h.disks.failNext(kind, errno, 1 + (in.u8() & 3));
            }
            default -> throw new IllegalStateException("operation " + op);
        }
    }

    /** A driver's bring-up with the program's features, queue size and ring addresses (moved into their areas). */
    private static void bringUp(Run r, long features, int queueSize, long desc, long avail, long used) {
        r.write(Virtio.R_STATUS, 4, 0);
        r.h.scheduler.runUntil(() -> r.read(Virtio.R_STATUS) == 0, 100_000);
        r.write(Virtio.R_STATUS, 4, Virtio.STATUS_ACKNOWLEDGE | Virtio.STATUS_DRIVER);
        r.write(Virtio.R_DRIVER_FEATURES_SEL, 4, 0);
        r.write(Virtio.R_DRIVER_FEATURES, 4, features & 0xffff_ffffL);
        r.write(Virtio.R_DRIVER_FEATURES_SEL, 4, 1);
        r.write(Virtio.R_DRIVER_FEATURES, 4, features >>> 32);
        int status = Virtio.STATUS_ACKNOWLEDGE | Virtio.STATUS_DRIVER | Virtio.STATUS_FEATURES_OK;
        r.write(Virtio.R_STATUS, 4, status);
        for (int q = 0; q < r.queues.length; q++) {
            long shift = q * 0x1_0000L;
            r.write(Virtio.R_QUEUE_SEL, 4, q);
            r.write(Virtio.R_QUEUE_NUM, 4, queueSize);
            r.write(Virtio.R_QUEUE_DESC_LOW, 4, desc + shift);
            r.write(Virtio.R_QUEUE_DESC_HIGH, 4, (desc + shift) >>> 32);
            r.write(Virtio.R_QUEUE_DRIVER_LOW, 4, avail + shift);
            r.write(Virtio.R_QUEUE_DRIVER_HIGH, 4, (avail + shift) >>> 32);
            r.write(Virtio.R_QUEUE_DEVICE_LOW, 4, used + shift);
            r.write(Virtio.R_QUEUE_DEVICE_HIGH, 4, (used + shift) >>> 32);
            r.write(Virtio.R_QUEUE_READY, 4, 1);
        }
        r.write(Virtio.R_STATUS, 4, status | Virtio.STATUS_DRIVER_OK);
    }
}
