package io.modemu.migration.tcp.testbed;

import io.modemu.guest.GuestEnvironment;
import io.modemu.guest.GuestProgram;
import io.modemu.guest.GuestTask;
import io.modemu.machine.GuestMemory;
import io.modemu.machine.MmioBus;
import io.modemu.options.Options;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Guest program {@code disk-writer} for the migration tests (a stand-in for disk-verify on
 * virtio-blk): keeps {@code depth} requests in flight on the {@link TestBlockDevice} in MMIO slot
 * {@code slot}, writing 4 KiB blocks with a pattern derived from (block, sequence number) and, with
 * {@code verify=on}, reading blocks back and checking them against the last acknowledged write;
 * meanwhile it dirties {@code dirty-pages} random pages of the rest of RAM per step. Every bit of its
 * state lives in guest RAM, so it carries on wherever the RAM goes.
 *
 * <p>With {@code pace}, it submits one request per {@code pace} at most: a steady stream whose
 * completions are spread out, so the number in flight stays near {@code depth} rather than
 * swinging between 0 and {@code depth} in batches.
 *
 * <p>Guest RAM layout from the RAM base: control block at 0 (see {@link State}), ring at 0x1000 (up
 * to 256 entries), the table of acknowledged sequence numbers per block at 0x4000 (up to 8192
 * blocks), one 4 KiB buffer per ring slot at 0x20000, and the area it dirties from 2 MiB to the end.
 */
public final class DiskWriter implements GuestProgram {
    public static final String NAME = "disk-writer";
    public static final long CONTROL = 0;
    public static final long RING = 0x1000;
    public static final long ACKS = 0x4000;
    public static final long BUFFERS = 0x20000;
    public static final long DIRTY_AREA = 0x200000;
    public static final int MAX_RING = 256;
    public static final int BLOCK = 4096;
    private static final long MAGIC = 0x444b5752_49544552L;
    /** How many requests a paced guest may submit at once to catch up after a slow step. */
    private static final long PACE_CREDIT = 8;

    /** What the program reports, read from guest RAM (any machine, any time). */
    public record State(boolean initialized, long nextSeq, long doneSeq, long writesAcked, long readsVerified, long failures, long firstFailure,
                        long dirtySteps) {
        /** Requests submitted and not processed yet. */
        public long outstanding() {
            return nextSeq - doneSeq;
        }

        /** Requests the guest has seen complete. */
        public long completed() {
            return doneSeq - 1;
        }

        public static State read(GuestMemory m) {
            long b = m.blocks().getFirst().base();
            return new State(m.readU64(b) == MAGIC, m.readU64(b + 8), m.readU64(b + 16), m.readU64(b + 24), m.readU64(b + 32), m.readU64(b + 40),
                    m.readU64(b + 64), m.readU64(b + 56));
        }
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String description() {
        return "keeps block requests in flight on test-blk, verifies what it reads, dirties RAM (migration tests)";
    }

    @Override
    public GuestTask load(GuestEnvironment env, Options options) {
        int slot = (int) options.integer("slot", 0, 0, MmioBus.SLOTS - 1);
        int ring = (int) options.integer("ring", 64, 1, MAX_RING);
        if (Integer.bitCount(ring) != 1) {
            throw new io.modemu.options.ConfigurationException("-guest disk-writer: ring must be a power of two, not " + ring);
        }
        int depth = (int) options.integer("depth", ring, 1, ring);
        long blocks = options.integer("blocks", 1024, 2L * ring + 2, 8192);
        boolean verify = options.bool("verify", true);
        int dirtyPages = (int) options.integer("dirty-pages", 4, 0, 4096);
        long waitNs = options.durationNanos("wait", 50_000, 1);
        long paceNs = options.durationNanos("pace", 0, 1);
        long seed = options.integer("seed", 1, Long.MIN_VALUE, Long.MAX_VALUE);
        if (env.ramSize() < DIRTY_AREA + BLOCK) {
            throw new io.modemu.options.ConfigurationException("-guest disk-writer: needs at least " + (DIRTY_AREA + BLOCK) + " bytes of RAM");
        }
        return new Task(env, MmioBus.VIRTIO_MMIO_BASE + slot * MmioBus.VIRTIO_MMIO_STRIDE, ring, depth, blocks, verify, dirtyPages, waitNs, paceNs, seed);
    }

    /**
     * The block request {@code seq} works on. With verify, odd numbers write block {@code seq/2} and
     * even ones read the block half the disk away, written {@code blocks} requests earlier: two
     * requests in flight never touch one block, and every read checks an acknowledged write.
     */
    public static long blockOf(long seq, long blocks, boolean verify) {
        if (!verify) {
            return seq % blocks;
        }
        return (seq & 1) == 1 ? (seq >>> 1) % blocks : ((seq >>> 1) + blocks / 2) % blocks;
    }

    /** The pattern of {@code block} after the write with sequence number {@code seq} (all zero for 0: never written). */
    public static long pattern(long block, long seq, int index) {
        if (seq == 0) {
            return 0;
        }
        long x = seq * 0x9E3779B97F4A7C15L ^ (block + 1) * 0xC2B2AE3D27D4EB4FL;
        return x + index * 0x632BE59BD9B4E019L;
    }

    private static final class Task implements GuestTask {
        private final GuestEnvironment env;
        private final GuestMemory m;
        private final long base;
        private final long mmio;
        private final int ring;
        private final int depth;
        private final long blocks;
        private final boolean verify;
        private final int dirtyPages;
        private final long dirtySpan;
        private final long waitNs;
        private final long paceNs;
        private final long seed;

        Task(GuestEnvironment env, long mmio, int ring, int depth, long blocks, boolean verify, int dirtyPages, long waitNs, long paceNs, long seed) {
            this.env = env;
            this.m = env.memory();
            this.base = env.ramBase();
            this.mmio = mmio;
            this.ring = ring;
            this.depth = depth;
            this.blocks = blocks;
            this.verify = verify;
            this.dirtyPages = dirtyPages;
            this.dirtySpan = (env.ramSize() - DIRTY_AREA) / BLOCK;
            this.waitNs = waitNs;
            this.paceNs = paceNs;
            this.seed = seed;
        }

        private long ctl(int field) {
            return m.readU64(base + CONTROL + field);
        }

        private void ctl(int field, long v) {
            m.writeU64(base + CONTROL + field, v);
        }

        @Override
        public long step() {
            if (ctl(0) != MAGIC) {
                init();
                return CONTINUE;
            }
            env.mmio().write(mmio + TestBlockDevice.REG_IRQ_ACK, 4, 1);
            boolean progress = completions();
            progress |= submit();
            dirty();
            return progress ? CONTINUE : waitNs;
        }

        private void init() {
            if (env.mmio().read(mmio + TestBlockDevice.REG_MAGIC, 4) != TestBlockDevice.MAGIC) {
                throw new IllegalStateException("disk-writer: no test-blk device at 0x" + Long.toHexString(mmio));
            }
            m.writeU16(base + RING, 0);
            long r = base + RING;
            env.mmio().write(mmio + TestBlockDevice.REG_RING_LO, 4, r & 0xffff_ffffL);
            env.mmio().write(mmio + TestBlockDevice.REG_RING_HI, 4, r >>> 32);
            env.mmio().write(mmio + TestBlockDevice.REG_RING_SIZE, 4, ring);
            ctl(8, 1);
            ctl(16, 1);
            ctl(48, seed == 0 ? 1 : seed);
            ctl(0, MAGIC);
        }

        private long blockOf(long seq) {
            return DiskWriter.blockOf(seq, blocks, verify);
        }

        private long entry(long seq) {
            return base + RING + 8 + ((seq - 1) % ring) * TestBlockDevice.ENTRY;
        }

        private boolean completions() {
            long done = ctl(16);
            long next = ctl(8);
            boolean any = false;
            while (done < next) {
                long e = entry(done);
                int st = m.readU8(e + 1);
                if (st == 0) {
                    break;
                }
                GuestMemory.fullFence();
                long seq = m.readU32(e + 4);
                long doneSeq = m.readU32(e + 28);
                int op = m.readU8(e);
                long block = blockOf(done);
                if (st != 1 || seq != (done & 0xffff_ffffL) || doneSeq != seq) {
                    fail(done);
                } else if (op == TestBlockDevice.OP_WRITE) {
                    m.writeU64(base + ACKS + block * 8, done);
                    ctl(24, ctl(24) + 1);
                } else if (!verifyRead(e, block)) {
                    fail(done);
                } else {
                    ctl(32, ctl(32) + 1);
                }
                m.writeU8(e + 1, 0);
                done++;
                any = true;
            }
            ctl(16, done);
            return any;
        }

        private boolean verifyRead(long e, long block) {
            long expected = m.readU64(base + ACKS + block * 8);
            long buf = m.readU64(e + 16);
            for (int i = 0; i < BLOCK / 8; i++) {
                if (m.readU64(buf + i * 8L) != pattern(block, expected, i)) {
                    return false;
                }
            }
            return true;
        }

        private void fail(long seq) {
            if (ctl(40) == 0) {
                ctl(64, seq);
            }
            ctl(40, ctl(40) + 1);
        }

        private boolean submit() {
            long next = ctl(8);
            long done = ctl(16);
            long first = next;
            long now = env.nanoTime();
            long due = ctl(72);
            if (paceNs > 0 && (due - now > paceNs || now - due > PACE_CREDIT * paceNs)) {
                // first step, a long stall, or another machine's clock: take up the stream from now
                due = now - PACE_CREDIT * paceNs;
            }
            while (next - done < depth) {
                if (paceNs > 0) {
                    // a steady stream: one request per pace (catching up a little after a slow step),
                    // so that completions spread out instead of coming in batches
                    if (now - due < 0) {
                        break;
                    }
                    due += paceNs;
                }
                long seq = next;
                long e = entry(seq);
                long block = blockOf(seq);
                int op = verify && (seq & 1) == 0 ? TestBlockDevice.OP_READ : TestBlockDevice.OP_WRITE;
                long buf = base + BUFFERS + ((seq - 1) % ring) * BLOCK;
                if (op == TestBlockDevice.OP_WRITE) {
                    for (int i = 0; i < BLOCK / 8; i++) {
                        m.writeU64(buf + i * 8L, pattern(block, seq, i));
                    }
                }
                m.writeU8(e, op);
                m.writeU8(e + 1, 0);
                m.writeU32(e + 4, seq & 0xffff_ffffL);
                m.writeU64(e + 8, block * BLOCK);
                m.writeU64(e + 16, buf);
                m.writeU32(e + 24, BLOCK);
                m.writeU32(e + 28, 0);
                next++;
                m.writeU16Release(base + RING, (int) ((seq) & 0xffff));
            }
            if (paceNs > 0) {
                ctl(72, due);
            }
            if (next == first) {
                return false;
            }
            ctl(8, next);
            env.mmio().write(mmio + TestBlockDevice.REG_NOTIFY, 4, 1);
            return true;
        }

        private void dirty() {
            if (dirtyPages == 0 || dirtySpan <= 0) {
                return;
            }
            long x = ctl(48);
            for (int i = 0; i < dirtyPages; i++) {
                x ^= x << 13;
                x ^= x >>> 7;
                x ^= x << 17;
                long page = Long.remainderUnsigned(x, dirtySpan);
                m.writeU64(base + DIRTY_AREA + page * BLOCK + (Long.remainderUnsigned(x >>> 32, BLOCK / 8)) * 8, x);
            }
            ctl(48, x);
            ctl(56, ctl(56) + 1);
        }

        @Override
        public Map<String, Object> status() {
            State s = State.read(m);
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("completed", s.completed());
            out.put("writes-acked", s.writesAcked());
            out.put("reads-verified", s.readsVerified());
            out.put("failures", s.failures());
            return out;
        }
    }
}
