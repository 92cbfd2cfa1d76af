package io.modemu.machine;

/** A run-state change that QEMU's transition table does not allow. */
public final class IllegalRunStateTransitionException extends IllegalStateException {
    private static final long serialVersionUID = 1L;
    private final RunState from;
    private final RunState to;

    public IllegalRunStateTransitionException(RunState from, RunState to) {
        super("invalid run state transition: '" + from.qapiName() + "' -> '" + to.qapiName() + "'");
        this.from = from;
        this.to = to;
    }

    public RunState from() {
        return from;
    }

    public RunState to() {
        return to;
    }
}
