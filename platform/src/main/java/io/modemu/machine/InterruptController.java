package io.modemu.machine;

import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The machine's interrupt controller, reduced to what a guest program needs: up to 63 level-triggered
 * lines (1..63, as the PLIC numbers sources) and a kick of every vCPU when a line goes up.
 */
public final class InterruptController {
    public static final int MAX_LINES = 63;

    private final AtomicLong pending = new AtomicLong();
    private final CopyOnWriteArrayList<Runnable> kickers = new CopyOnWriteArrayList<>();
    private final IrqLine[] lines = new IrqLine[MAX_LINES + 1];

    public InterruptController() {
        for (int i = 1; i <= MAX_LINES; i++) {
            lines[i] = new IrqLine(this, i);
        }
    }

    public IrqLine line(int number) {
        if (number < 1 || number > MAX_LINES) {
            throw new IllegalArgumentException("interrupt line " + number + " out of range 1.." + MAX_LINES);
        }
        return lines[number];
    }

    /** Bit n set = line n raised. Any thread. */
    public long pending() {
        return pending.get();
    }

    public boolean isPending(int number) {
        return (pending.get() & (1L << number)) != 0;
    }

    void set(int number, boolean level) {
        long bit = 1L << number;
        if (level) {
            long old = pending.getAndUpdate(v -> v | bit);
            if ((old & bit) == 0) {
                for (Runnable k : kickers) {
                    k.run();
                }
            }
        } else {
            pending.getAndUpdate(v -> v & ~bit);
        }
    }

    /** Called whenever a line rises (the vCPUs register here to wake from a wait). */
    public Registration onRaise(Runnable kicker) {
        kickers.add(kicker);
        return () -> kickers.remove(kicker);
    }
}
