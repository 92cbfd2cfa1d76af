package io.modemu.machine;

import io.modemu.aio.AioContext;
import io.modemu.aio.TimerHandle;
import io.modemu.guest.GuestEnvironment;
import io.modemu.guest.GuestTask;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A virtual CPU: its own context ({@code vcpuN}) that runs a {@link GuestTask} step after step.
 *
 * <p>The safe point is between two steps: {@link #pause()} completes once the step running now has
 * returned, and no step runs until {@link #resume()}. Both may be called from any thread and
 * never block. A throttle (auto-converge) sleeps the vCPU for a share of its time; an interrupt wakes
 * a vCPU that waits for one, never one that sleeps its throttle.
 */
public final class Vcpu implements GuestEnvironment {
    private static final Logger log = LoggerFactory.getLogger(Vcpu.class);

    private final int index;
    private final AioContext context;
    private final Machine machine;
    private final Runnable stepTask = this::runStep;
    private GuestTask task;
    // fields below are only touched on this vCPU's context
    private boolean running;
    private boolean halted;
    private boolean stepQueued;
    private TimerHandle waitTimer;
    /** The pending timer is a throttle sleep, which an interrupt does not cut short (as QEMU's cpu throttle). */
    private boolean throttleSleep;
    private volatile int throttlePercent;
    /** When the current throttle timeslice began (context time), or -1 when none is running. */
    private long sliceStart = -1;
    private volatile long steps;

    Vcpu(int index, AioContext context, Machine machine) {
        this.index = index;
        this.context = context;
        this.machine = machine;
        machine.interrupts().onRaise(this::kick);
    }

    public int index() {
        return index;
    }

    public AioContext context() {
        return context;
    }

    /** The loaded program, or null. */
    public GuestTask task() {
        return task;
    }

    void load(GuestTask t) {
        this.task = t;
    }

    /** Steps run so far. */
    public long steps() {
        return steps;
    }

    /** Pauses at the next safe point. Any thread; completes on the vCPU's context. */
    public CompletionStage<Void> pause() {
        return context.submit(() -> {
            running = false;
            if (waitTimer != null) {
                waitTimer.cancel();
                waitTimer = null;
                throttleSleep = false;
            }
            return null;
        });
    }

    /** Resumes stepping. Any thread. */
    public CompletionStage<Void> resume() {
        return context.submit(() -> {
            running = true;
            queueStep();
            return null;
        });
    }

    /** QEMU's CPU_THROTTLE_TIMESLICE_NS: how long a throttled vCPU runs between two throttle sleeps. */
    static final long THROTTLE_TIMESLICE_NANOS = 10_000_000;

    /**
     * Sleeps the vCPU for {@code percent} of its time (0 = no throttle, max 99), as QEMU's cpu throttle
     * does: it runs {@link #THROTTLE_TIMESLICE_NANOS}, then sleeps that times {@code percent / (100 - percent)}.
     */
    public void setThrottle(int percent) {
        this.throttlePercent = Math.max(0, Math.min(99, percent));
    }

    public int throttlePercent() {
        return throttlePercent;
    }

    /** Wakes the vCPU from a wait for an interrupt. Any thread. */
    void kick() {
        context.execute(() -> {
            if (running && waitTimer != null && !throttleSleep) {
                waitTimer.cancel();
                waitTimer = null;
                queueStep();
            }
        });
    }

    private void queueStep() {
        if (!stepQueued && !halted && task != null) {
            stepQueued = true;
            context.execute(stepTask);
        }
    }

    private void runStep() {
        stepQueued = false;
        if (!running || halted || task == null) {
            return;
        }
        long r;
        try {
            r = task.step();
        } catch (RuntimeException e) {
            log.error("vCPU {}: guest program failed; the vCPU halts and the VM goes to guest-panicked", index, e);
            halted = true;
            machine.guestPanicked(e);
            return;
        }
        steps++;
        if (r == GuestTask.HALT) {
            halted = true;
            return;
        }
        int throttle = throttlePercent;
        if (throttle > 0) {
            // QEMU's cpu throttle: the vCPU runs a timeslice, then sleeps timeslice x pct / (100 - pct) in one
            // piece (99%: 10 ms of every second). Sleeping in proportion after every step instead spreads the
            // guest thinly over the whole second, so no interval between two dirty syncs is ever quiet
            long now = context.nanoTime();
            if (sliceStart < 0) {
                sliceStart = now;
            } else if (now - sliceStart >= THROTTLE_TIMESLICE_NANOS) {
                sliceStart = -1;
                waitTimer = context.schedule(THROTTLE_TIMESLICE_NANOS * throttle / (100 - throttle), this::timerFired);
                throttleSleep = true;
                return;
            }
        } else {
            sliceStart = -1;
        }
        if (r == GuestTask.CONTINUE) {
            queueStep();
        } else if (machine.interrupts().pending() != 0) {
            queueStep();
        } else {
            waitTimer = context.schedule(r, this::timerFired);
        }
    }

    private void timerFired() {
        waitTimer = null;
        throttleSleep = false;
        if (running) {
            queueStep();
        }
    }

    @Override
    public GuestMemory memory() {
        return machine.memory();
    }

    @Override
    public MmioBus mmio() {
        return machine.mmio();
    }

    @Override
    public InterruptController interrupts() {
        return machine.interrupts();
    }

    @Override
    public long nanoTime() {
        return context.nanoTime();
    }

    @Override
    public int vcpuIndex() {
        return index;
    }

    @Override
    public long ramBase() {
        return machine.memory().blocks().getFirst().base();
    }

    @Override
    public long ramSize() {
        return machine.memory().blocks().getFirst().size();
    }
}
