package io.modemu.guest.diskverify;

import io.modemu.guest.GuestEnvironment;
import io.modemu.guest.GuestTask;
import io.modemu.guest.virtio.GuestDriverException;
import io.modemu.guest.virtio.VirtioBlkGuest;
import io.modemu.guest.virtio.VirtioMmioRegisters;
import io.modemu.machine.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One running disk-verify program. Each {@link #step()} is short: take completions, verify reads,
 * queue more requests up to the queue depth, dirty the RAM the rate allows, and sleep until an
 * interrupt when there is nothing to do.
 *
 * <p>State: everything lives in guest RAM ({@link DiskVerifyState}); this object only caches views
 * rebuilt from RAM, so a fresh task on a migration's destination carries on from the source's RAM.
 * Threads: {@link #step()} on the vCPU; {@link #status()} from anywhere (it only reads RAM).
 */
final class DiskVerifyTask implements GuestTask {
    private static final Logger log = LoggerFactory.getLogger(DiskVerifyTask.class);
    private static final long IDLE_WAIT_NANOS = 1_000_000;
    private static final long RESET_POLL_NANOS = 20_000;
    private static final long MAX_DIRTY_INTERVAL = 100_000_000;
    private static final int MAX_DIRTY_PAGES_PER_STEP = 64;
    /** Requests queued per step at most: a step is the vCPU's safe-point granularity, so it stays short. */
    private static final int MAX_ISSUE_PER_STEP = 16;

    private final GuestEnvironment env;
    private final GuestMemory memory;
    private final DiskVerifyConfig requested;
    private final DiskVerifyState state;
    private final BlockStamp stamp = new BlockStamp();
    private final VirtioBlkGuest.Completion onCompletion = this::completed;
    // views rebuilt from RAM (never state of their own)
    private VirtioBlkGuest driver;
    private DiskVerifyConfig config;
    private long buffers;
    private long dirtyBase;
    private long sectorsPerBlock;

    DiskVerifyTask(GuestEnvironment env, DiskVerifyConfig requested) {
        this.env = env;
        this.memory = env.memory();
        this.requested = requested;
        this.state = new DiskVerifyState(memory, env.ramBase());
    }

    @Override
    public long step() {
        if (!state.isPresent()) {
            state.initialize(requested);
        }
        if (config == null) {
            config = state.config();
            if (!config.equals(requested)) {
                log.info("disk-verify: carrying on with the configuration found in guest RAM ({}), not the options ({})", config, requested);
            }
            buffers = env.ramBase() + DiskVerifyState.buffersOffset(config);
            dirtyBase = env.ramBase() + DiskVerifyState.dirtyOffset(config);
            sectorsPerBlock = config.blockSize() / BlockStamp.SECTOR;
        }
        return switch (state.phase()) {
            case DiskVerifyState.PHASE_NEW -> probe();
            case DiskVerifyState.PHASE_RESETTING -> bringUp();
            case DiskVerifyState.PHASE_RUNNING -> run();
            default -> HALT;
        };
    }

    private long probe() {
        long[] disks = VirtioMmioRegisters.probe(env.mmio(), VirtioBlkGuest.DEVICE_ID);
        if (disks.length == 0) {
            log.warn("disk-verify: no virtio-blk device in any virtio-mmio slot; halting");
            state.phase(DiskVerifyState.PHASE_NO_DISK);
            return HALT;
        }
        state.u64(DiskVerifyState.O_MMIO, disks[0]);
        VirtioBlkGuest.beginReset(env.mmio(), disks[0]);
        state.phase(DiskVerifyState.PHASE_RESETTING);
        return CONTINUE;
    }

    private long bringUp() {
        long mmio = state.u64(DiskVerifyState.O_MMIO);
        if (!VirtioBlkGuest.resetDone(env.mmio(), mmio)) {
            return RESET_POLL_NANOS;
        }
        try {
            VirtioBlkGuest d = VirtioBlkGuest.initialize(memory, env.mmio(), mmio, env.ramBase() + DiskVerifyState.driverOffset(),
                    DiskVerifyState.setup(config));
            long needed = config.blocks() * sectorsPerBlock;
            if (d.capacity() < needed) {
                throw new GuestDriverException("the disk has " + d.capacity() + " sectors, disk-verify needs " + needed + " (blocks x block-size)");
            }
            if (config.blockSize() % d.blockSize() != 0) {
                throw new GuestDriverException("block-size " + config.blockSize() + " is not a multiple of the disk's block size " + d.blockSize());
            }
            driver = d;
        } catch (GuestDriverException e) {
            log.warn("disk-verify: {}; halting", e.getMessage());
            state.phase(DiskVerifyState.PHASE_FAILED);
            return HALT;
        }
        state.phase(DiskVerifyState.PHASE_RUNNING);
        log.info("disk-verify: disk at 0x{} ready: {} sectors, verifying {} blocks of {} bytes at queue depth {}",
                Long.toHexString(mmio), driver.capacity(), config.blocks(), config.blockSize(), config.depth());
        return CONTINUE;
    }

    private long run() {
        if (driver == null) {
            driver = VirtioBlkGuest.attach(memory, env.mmio(), env.ramBase() + DiskVerifyState.driverOffset());
        }
        int isr = driver.ackInterrupt();
        if ((isr & 2) != 0 && driver.needsReset()) {
            log.warn("disk-verify: the device asks for a reset (DEVICE_NEEDS_RESET); halting");
            state.phase(DiskVerifyState.PHASE_FAILED);
            return HALT;
        }
        int done = driver.poll(0, onCompletion, config.depth());
        int issued = issue();
        if (issued > 0) {
            driver.kick(0);
        }
        long dirtyWait = dirty();
        if (done > 0 || issued > 0) {
            return CONTINUE;
        }
        if (driver.queue(0).enableInterrupt()) {
            return CONTINUE;
        }
        return Math.min(IDLE_WAIT_NANOS, dirtyWait);
    }

    /** Queues requests into free slots: this generation's writes first, then its reads. */
    private int issue() {
        long blocks = config.blocks();
        long generation = state.u64(DiskVerifyState.O_GENERATION);
        if (state.u64(DiskVerifyState.O_READS_DONE) == blocks && allSlotsFree()) {
            generation++;
            state.u64(DiskVerifyState.O_GENERATION, generation);
            state.u64(DiskVerifyState.O_WRITE_CURSOR, 0);
            state.u64(DiskVerifyState.O_READ_CURSOR, 0);
            state.u64(DiskVerifyState.O_WRITES_DONE, 0);
            state.u64(DiskVerifyState.O_READS_DONE, 0);
        }
        int issued = 0;
        for (int slot = 0; slot < config.depth() && issued < MAX_ISSUE_PER_STEP; slot++) {
            if (state.slotState(slot) != DiskVerifyState.SLOT_FREE) {
                continue;
            }
            long writeCursor = state.u64(DiskVerifyState.O_WRITE_CURSOR);
            long buf = buffers + (long) slot * config.blockSize();
            if (writeCursor < blocks) {
                stamp.stamp(memory.slice(buf, config.blockSize()), writeCursor * sectorsPerBlock, generation);
                memory.markDirty(buf, config.blockSize());
                if (driver.submit(0, VirtioBlkGuest.T_OUT, writeCursor * sectorsPerBlock, buf, config.blockSize(), false, slot) < 0) {
                    break;
                }
                state.slot(slot, DiskVerifyState.SLOT_WRITING, writeCursor);
                state.u64(DiskVerifyState.O_WRITE_CURSOR, writeCursor + 1);
                issued++;
                continue;
            }
            long readCursor = state.u64(DiskVerifyState.O_READ_CURSOR);
            if (state.u64(DiskVerifyState.O_WRITES_DONE) == blocks && readCursor < blocks) {
                if (driver.submit(0, VirtioBlkGuest.T_IN, readCursor * sectorsPerBlock, buf, config.blockSize(), true, slot) < 0) {
                    break;
                }
                state.slot(slot, DiskVerifyState.SLOT_READING, readCursor);
                state.u64(DiskVerifyState.O_READ_CURSOR, readCursor + 1);
                issued++;
                continue;
            }
            break;
        }
        return issued;
    }

    private boolean allSlotsFree() {
        for (int slot = 0; slot < config.depth(); slot++) {
            if (state.slotState(slot) != DiskVerifyState.SLOT_FREE) {
                return false;
            }
        }
        return true;
    }

    private void completed(long tag, int status, int usedLen) {
        int slot = (int) tag;
        if (slot < 0 || slot >= config.depth()) {
            log.warn("disk-verify: completion with unknown tag {}", tag);
            state.add(DiskVerifyState.O_FAILED, 1);
            return;
        }
        long block = state.slotBlock(slot);
        int kind = state.slotState(slot);
        state.slot(slot, DiskVerifyState.SLOT_FREE, 0);
        if (status != VirtioBlkGuest.S_OK) {
            state.add(DiskVerifyState.O_IO_ERRORS, 1);
        }
        if (kind == DiskVerifyState.SLOT_WRITING) {
            state.add(DiskVerifyState.O_WRITES_DONE, 1);
            state.add(DiskVerifyState.O_WRITES_TOTAL, 1);
        } else if (kind == DiskVerifyState.SLOT_READING) {
            state.add(DiskVerifyState.O_READS_DONE, 1);
            state.add(DiskVerifyState.O_READS_TOTAL, 1);
            long generation = state.u64(DiskVerifyState.O_GENERATION);
            String problem = status != VirtioBlkGuest.S_OK ? "read failed with status " + status
                    : stamp.verify(memory.slice(buffers + (long) slot * config.blockSize(), config.blockSize()), block * sectorsPerBlock, generation);
            if (problem == null) {
                state.add(DiskVerifyState.O_VERIFIED, 1);
            } else {
                if (state.u64(DiskVerifyState.O_FAILED) == 0) {
                    state.u64(DiskVerifyState.O_FIRST_FAILURE, block + 1);
                    log.warn("disk-verify: block {} (generation {}) failed verification: {}", block, generation, problem);
                }
                state.add(DiskVerifyState.O_FAILED, 1);
            }
        } else {
            log.warn("disk-verify: completion for idle slot {}", slot);
            state.add(DiskVerifyState.O_FAILED, 1);
        }
    }

    /**
     * Dirties what the rate allows since the last step (one 8-byte write per 4 KiB page, cycling
     * through the area). Returns how long until the next page is due.
     */
    private long dirty() {
        long rate = config.dirtyRate();
        if (rate <= 0) {
            return Long.MAX_VALUE;
        }
        long now = env.nanoTime();
        long last = state.u64(DiskVerifyState.O_DIRTY_LAST);
        long elapsed = last == 0 ? 0 : Math.clamp(now - last, 0, MAX_DIRTY_INTERVAL);
        state.u64(DiskVerifyState.O_DIRTY_LAST, now);
        long debt = Math.min(rate, state.u64(DiskVerifyState.O_DIRTY_DEBT) + (long) (rate * (elapsed / 1e9)));
        long pages = Math.min(debt / DiskVerifyState.PAGE, MAX_DIRTY_PAGES_PER_STEP);
        if (pages > 0) {
            long cursor = state.u64(DiskVerifyState.O_DIRTY_CURSOR);
            long counter = state.u64(DiskVerifyState.O_DIRTY_BYTES);
            MemorySegment area = memory.slice(dirtyBase, config.dirtySize());
            for (long p = 0; p < pages; p++) {
                area.set(ValueLayout.JAVA_LONG_UNALIGNED, cursor, counter + p);
                memory.markDirty(dirtyBase + cursor, 8);
                cursor = (cursor + DiskVerifyState.PAGE) % config.dirtySize();
            }
            state.u64(DiskVerifyState.O_DIRTY_CURSOR, cursor);
            state.add(DiskVerifyState.O_DIRTY_BYTES, pages * DiskVerifyState.PAGE);
            debt -= pages * DiskVerifyState.PAGE;
        }
        state.u64(DiskVerifyState.O_DIRTY_DEBT, debt);
        long missing = DiskVerifyState.PAGE - debt;
        return missing <= 0 ? 0 : Math.max(1_000, (long) (missing * 1e9 / rate));
    }

    @Override
    public Map<String, Object> status() {
        Map<String, Object> m = new LinkedHashMap<>();
        boolean present = state.isPresent();
        int phase = present ? state.phase() : DiskVerifyState.PHASE_NEW;
        m.put("phase", DiskVerifyState.phaseName(phase));
        if (present) {
            m.put("generation", state.u64(DiskVerifyState.O_GENERATION));
            m.put("verified", state.u64(DiskVerifyState.O_VERIFIED));
            m.put("failed", state.u64(DiskVerifyState.O_FAILED));
            m.put("io-errors", state.u64(DiskVerifyState.O_IO_ERRORS));
            m.put("writes", state.u64(DiskVerifyState.O_WRITES_TOTAL));
            m.put("reads", state.u64(DiskVerifyState.O_READS_TOTAL));
            m.put("dirty-bytes", state.u64(DiskVerifyState.O_DIRTY_BYTES));
            long first = state.u64(DiskVerifyState.O_FIRST_FAILURE);
            if (first != 0) {
                m.put("first-failed-block", first - 1);
            }
            long mmio = state.u64(DiskVerifyState.O_MMIO);
            if (mmio != 0) {
                m.put("disk", "0x" + Long.toHexString(mmio));
            }
        } else {
            m.put("verified", 0L);
            m.put("failed", 0L);
        }
        return m;
    }
}
