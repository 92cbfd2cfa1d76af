package io.modemu.bench;

import io.modemu.guest.GuestEnvironment;
import io.modemu.guest.GuestProgram;
import io.modemu.guest.GuestTask;
import io.modemu.guest.virtio.GuestDriverException;
import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.guest.virtio.VirtioMmioRegisters;
import io.modemu.options.Options;

/**
 * Guest program {@code bench-random-read}: random reads of {@code bs} bytes at queue depth {@code qd}
 * through the guest-side virtio-blk driver, as fio's randread would in a guest. While requests
 * complete it polls the used ring (guest memory: no register access) every {@code poll-interval},
 * pausing in between as a CPU would with a pause instruction; after {@code poll} without a completion it
 * enables the interrupt and sleeps until one comes. It reads and acknowledges InterruptStatus only when
 * the interrupt line is up, as an interrupt handler does. {@code poll=0} is a purely interrupt-driven
 * guest, {@code poll-interval=0} one that polls without pausing.
 */
final class RandomReadProgram implements GuestProgram {
    static final String NAME = "bench-random-read";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String description() {
        return "random reads at a fixed queue depth (benchmark)";
    }

    @Override
    public GuestTask load(GuestEnvironment env, Options options) {
        int qd = (int) options.integer("qd", 32, 1, 128);
        int bs = (int) options.size("bs", 4096);
        boolean indirect = options.bool("indirect", false);
        long poll = options.durationNanos("poll", 50_000, 1);
        long pollInterval = options.durationNanos("poll-interval", 5_000, 1);
        return new Task(env, qd, bs, indirect, poll, pollInterval);
    }

    /** The running program; {@link #completed()} may be read from any thread. */
    static final class Task implements GuestTask {
        private static final long DRIVER_STATE_OFFSET = 0x1_0000;
        private static final long BUFFERS_OFFSET = 0x10_0000;

        private final GuestEnvironment env;
        private final int qd;
        private final int bs;
        private final boolean indirect;
        private final VirtioBlkGuest.Completion onCompletion = this::completed;
        private VirtioBlkGuest driver;
        private long mmio;
        private long blocks;
        private long random = 0x9E37_79B9_7F4A_7C15L;
        private int[] toResubmit;
        private int resubmitCount;
        private long lastProgress;
        private final long pollNanos;
        private volatile long completed;
        private volatile long errors;
        volatile long steps;
        volatile long sleeps;
        volatile long notifies;
        volatile long emptyPolls;

        private final long pollIntervalNanos;

        Task(GuestEnvironment env, int qd, int bs, boolean indirect, long pollNanos, long pollIntervalNanos) {
            this.env = env;
            this.pollIntervalNanos = pollIntervalNanos;
            this.pollNanos = pollNanos;
            this.qd = qd;
            this.bs = bs;
            this.indirect = indirect;
            this.toResubmit = new int[qd];
        }

        long completed() {
            return completed;
        }

        long errors() {
            return errors;
        }

        @Override
        public long step() {
            if (driver == null) {
                return bringUp();
            }
            steps = steps + 1;
            if (env.interrupts().pending() != 0) {
                // the interrupt handler (virtio-mmio's vm_interrupt): read and acknowledge InterruptStatus;
                // polling the used ring, which is guest memory, needs no register access
                driver.ackInterrupt();
            }
            resubmitCount = 0;
            int n = driver.poll(0, onCompletion, qd);
            if (n > 0) {
                for (int i = 0; i < resubmitCount; i++) {
                    submit(toResubmit[i]);
                }
                if (driver.kick(0)) {
                    notifies = notifies + 1;
                }
                lastProgress = env.nanoTime();
                return CONTINUE;
            }
            emptyPolls = emptyPolls + 1;
            if (env.nanoTime() - lastProgress < pollNanos) {
                // requests are in flight and were completing a moment ago: poll before sleeping on an interrupt
                return pollIntervalNanos == 0 ? CONTINUE : pollIntervalNanos;
            }
            if (driver.queue(0).enableInterrupt()) {
                return CONTINUE;
            }
            sleeps = sleeps + 1;
            return 1_000_000;
        }

        private long bringUp() {
            if (mmio == 0) {
                long[] disks = VirtioMmioRegisters.probe(env.mmio(), VirtioBlkGuest.DEVICE_ID);
                if (disks.length == 0) {
                    throw new GuestDriverException("bench-random-read: no virtio-blk device");
                }
                mmio = disks[0];
                VirtioBlkGuest.beginReset(env.mmio(), mmio);
            }
            if (!VirtioBlkGuest.resetDone(env.mmio(), mmio)) {
                return 10_000;
            }
            int queueSize = Integer.highestOneBit(Math.max(16, qd * (indirect ? 1 : 3)) - 1) << 1;
            driver = VirtioBlkGuest.initialize(env.memory(), env.mmio(), mmio, env.ramBase() + DRIVER_STATE_OFFSET,
                    VirtioBlkGuest.Setup.defaults().withQueueSize(queueSize).withIndirect(indirect));
            blocks = driver.capacity() * 512 / bs;
            for (int slot = 0; slot < qd; slot++) {
                submit(slot);
            }
            driver.kick(0);
            return CONTINUE;
        }

        private void submit(int slot) {
            random ^= random << 13;
            random ^= random >>> 7;
            random ^= random << 17;
            long block = Long.remainderUnsigned(random, blocks);
            long buffer = env.ramBase() + BUFFERS_OFFSET + (long) slot * bs;
            if (driver.submit(0, VirtioBlkGuest.T_IN, block * (bs / 512), buffer, bs, true, slot) < 0) {
                throw new GuestDriverException("bench-random-read: queue full with " + qd + " requests");
            }
        }

        private void completed(long tag, int status, int usedLen) {
            if (status != VirtioBlkGuest.S_OK) {
                errors = errors + 1;
            }
            completed = completed + 1;
            toResubmit[resubmitCount++] = (int) tag;
        }
    }
}
