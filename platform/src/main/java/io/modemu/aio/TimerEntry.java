package io.modemu.aio;

/** A timer in a loop driver's queue: ordered by deadline, ties in scheduling order. */
final class TimerEntry<O> implements TimerHandle, Comparable<TimerEntry<?>> {
    final long deadline;
    final long seq;
    final O owner;
    final Runnable task;
    volatile boolean cancelled;

    TimerEntry(long deadline, long seq, O owner, Runnable task) {
        this.deadline = deadline;
        this.seq = seq;
        this.owner = owner;
        this.task = task;
    }

    @Override
    public boolean cancel() {
        boolean was = cancelled;
        cancelled = true;
        return !was;
    }

    @Override
    public int compareTo(TimerEntry<?> o) {
        int c = Long.compare(deadline, o.deadline);
        return c != 0 ? c : Long.compare(seq, o.seq);
    }
}
