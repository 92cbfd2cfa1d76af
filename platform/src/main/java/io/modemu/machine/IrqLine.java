package io.modemu.machine;

/**
 * One level-triggered interrupt line into the guest. Raising and lowering are lock-free and may be
 * called from any thread, in particular from an IOThread completing a request: delivering an
 * interrupt never needs the main loop (QEMU's irqfd).
 */
public final class IrqLine {
    private final InterruptController controller;
    private final int number;

    IrqLine(InterruptController controller, int number) {
        this.controller = controller;
        this.number = number;
    }

    public int number() {
        return number;
    }

    public void raise() {
        controller.set(number, true);
    }

    public void lower() {
        controller.set(number, false);
    }

    public boolean isRaised() {
        return controller.isPending(number);
    }
}
