package io.modemu.bench;

import io.modemu.aio.AioContext;
import io.modemu.block.BlockBackend;
import io.modemu.block.BlockCompletion;
import io.modemu.machine.GuestMemory;
import java.lang.foreign.MemorySegment;

/**
 * The reference: the same random reads issued straight to a {@link BlockBackend} from its own
 * context, with no device and no guest, at the same queue depth and into the same kind of buffers
 * (guest RAM). Runs on the backend's context; {@link #completed()} may be read from any thread.
 */
final class DirectReader {
    private final BlockBackend backend;
    private final AioContext context;
    private final Slot[] ready;
    private final long blocks;
    private final int bs;
    private final Runnable pumpTask = this::pump;
    private int readyCount;
    private int readyHead;
    private boolean pumping;
    private boolean pumpScheduled;
    private long random = 0x9E37_79B9_7F4A_7C15L;
    private volatile boolean running;
    private volatile long completed;
    private volatile long errors;
    private volatile int inFlight;

    private final class Slot implements BlockCompletion {
        final MemorySegment buffer;

        Slot(MemorySegment buffer) {
            this.buffer = buffer;
        }

        void submit() {
            random ^= random << 13;
            random ^= random >>> 7;
            random ^= random << 17;
            long block = Long.remainderUnsigned(random, blocks);
            inFlight = inFlight + 1;
            backend.read(block * bs, buffer, this);
        }

        @Override
        public void complete(int status) {
            inFlight = inFlight - 1;
            if (status < 0) {
                errors = errors + 1;
            }
            completed = completed + 1;
            ready[(readyHead + readyCount++) % ready.length] = this;
            if (running && !pumping && !pumpScheduled) {
                pumpScheduled = true;
                context.execute(pumpTask);
            }
        }
    }

    DirectReader(BlockBackend backend, GuestMemory memory, long buffersGpa, int qd, int bs) {
        this.backend = backend;
        this.context = backend.context();
        this.bs = bs;
        this.blocks = backend.size() / bs;
        this.ready = new Slot[qd];
        for (int i = 0; i < qd; i++) {
            ready[i] = new Slot(memory.slice(buffersGpa + (long) i * bs, bs));
        }
        this.readyCount = qd;
    }

    /** Starts (or resumes) the reads. Any thread. */
    void resume() {
        running = true;
        context.execute(pumpTask);
    }

    /** Stops issuing new reads; those in flight complete (see {@link #inFlight()}). Any thread. */
    void pause() {
        running = false;
    }

    long completed() {
        return completed;
    }

    long errors() {
        return errors;
    }

    int inFlight() {
        return inFlight;
    }

    private void pump() {
        pumpScheduled = false;
        pumping = true;
        int budget = 4096;
        while (running && readyCount > 0 && budget-- > 0) {
            Slot s = ready[readyHead];
            readyHead = (readyHead + 1) % ready.length;
            readyCount--;
            s.submit();
        }
        pumping = false;
        if (running && readyCount > 0 && !pumpScheduled) {
            pumpScheduled = true;
            context.execute(pumpTask);
        }
    }
}
