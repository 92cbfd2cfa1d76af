package io.modemu.aio;

/** A timer scheduled on an {@link AioContext}. */
public interface TimerHandle {
    /** Cancels the timer if it has not fired yet. Any thread. Returns whether it was cancelled. */
    boolean cancel();
}
