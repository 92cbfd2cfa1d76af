package io.modemu.bench;

import io.modemu.guest.GuestEnvironment;
import io.modemu.guest.GuestProgram;
import io.modemu.guest.GuestTask;
import io.modemu.guest.virtio.GuestDriverException;
import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.guest.virtio.VirtioMmioRegisters;
import io.modemu.options.Options;

/**
 * Guest program {@code bench-batch-read}: while the benchmark asks for it ({@link Task#fill}), submits a
 * batch of exactly {@code qd} reads of {@code bs} bytes with one kick, waits (on interrupts) until all of
 * them completed, and submits the next batch. With {@code fill} off it completes what it has and idles.
 * The benchmark reads its counters from any thread; they are stable while the vCPU is paused.
 */
final class BatchReadProgram implements GuestProgram {
    static final String NAME = "bench-batch-read";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String description() {
        return "batches of reads at a fixed queue depth, on demand (benchmark)";
    }

    @Override
    public GuestTask load(GuestEnvironment env, Options options) {
        int qd = (int) options.integer("qd", 64, 1, 128);
        int bs = (int) options.size("bs", 4096);
        return new Task(env, qd, bs);
    }

    static final class Task implements GuestTask {
        private static final long DRIVER_STATE_OFFSET = 0x1_0000;
        private static final long BUFFERS_OFFSET = 0x10_0000;
        /** How long the guest sleeps when idle before it looks at {@link #fill} again. */
        private static final long IDLE_NANOS = 100_000;

        private final GuestEnvironment env;
        private final int qd;
        private final int bs;
        private final VirtioBlkGuest.Completion onCompletion = this::completed;
        private VirtioBlkGuest driver;
        private long mmio;
        private long blocks;
        private long random = 0x9E37_79B9_7F4A_7C15L;
        private int outstanding;
        /** Set by the benchmark: submit a new batch whenever the last one has completed. */
        volatile boolean fill;
        private volatile boolean ready;
        private volatile long submitted;
        private volatile long completed;
        private volatile long errors;
        /** Guest clock when the last batch was kicked. */
        private volatile long kickNanos;

        Task(GuestEnvironment env, int qd, int bs) {
            this.env = env;
            this.qd = qd;
            this.bs = bs;
        }

        boolean ready() {
            return ready;
        }

        long submitted() {
            return submitted;
        }

        long completed() {
            return completed;
        }

        long errors() {
            return errors;
        }

        long kickNanos() {
            return kickNanos;
        }

        @Override
        public long step() {
            if (driver == null) {
                return bringUp();
            }
            driver.ackInterrupt();
            int n = driver.poll(0, onCompletion, qd);
            if (outstanding == 0 && fill) {
                for (int slot = 0; slot < qd; slot++) {
                    submit(slot);
                }
                outstanding = qd;
                submitted = submitted + qd;
                kickNanos = env.nanoTime();
                driver.kick(0);
                return CONTINUE;
            }
            if (n > 0) {
                return CONTINUE;
            }
            if (outstanding == 0) {
                return IDLE_NANOS;
            }
            if (driver.queue(0).enableInterrupt()) {
                return CONTINUE;
            }
            return 1_000_000;
        }

        private long bringUp() {
            if (mmio == 0) {
                long[] disks = VirtioMmioRegisters.probe(env.mmio(), VirtioBlkGuest.DEVICE_ID);
                if (disks.length == 0) {
                    throw new GuestDriverException(NAME + ": no virtio-blk device");
                }
                mmio = disks[0];
                VirtioBlkGuest.beginReset(env.mmio(), mmio);
            }
            if (!VirtioBlkGuest.resetDone(env.mmio(), mmio)) {
                return 10_000;
            }
            int queueSize = Integer.highestOneBit(Math.max(16, qd * 3) - 1) << 1;
            driver = VirtioBlkGuest.initialize(env.memory(), env.mmio(), mmio, env.ramBase() + DRIVER_STATE_OFFSET,
                    VirtioBlkGuest.Setup.defaults().withQueueSize(queueSize).withIndirect(false));
            blocks = driver.capacity() * 512 / bs;
            ready = true;
            return CONTINUE;
        }

        private void submit(int slot) {
            random ^= random << 13;
            random ^= random >>> 7;
            random ^= random << 17;
            long block = Long.remainderUnsigned(random, blocks);
            long buffer = env.ramBase() + BUFFERS_OFFSET + (long) slot * bs;
            if (driver.submit(0, VirtioBlkGuest.T_IN, block * (bs / 512), buffer, bs, true, slot) < 0) {
                throw new GuestDriverException(NAME + ": queue full with " + qd + " requests");
            }
        }

        private void completed(long tag, int status, int usedLen) {
            if (status != VirtioBlkGuest.S_OK) {
                errors = errors + 1;
            }
            outstanding--;
            completed = completed + 1;
        }
    }
}
