package io.modemu.aio;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The ioeventfd equivalent: any thread {@link #signal()}s, the handler runs on the owning
 * {@link AioContext}. Signals that arrive before the handler ran coalesce into one run; a signal
 * that arrives while the handler runs causes one more run.
 */
public final class EventNotifier {
    private final AioContext context;
    private final String name;
    private final Runnable handler;
    private final AtomicBoolean pending = new AtomicBoolean();
    private final Runnable dispatch;
    private volatile boolean enabled = true;

    EventNotifier(AioContext context, String name, Runnable handler) {
        this.context = context;
        this.name = name;
        this.handler = handler;
        this.dispatch = this::dispatch;
    }

    /** Signals the notifier. Any thread; never blocks. */
    public void signal() {
        if (pending.compareAndSet(false, true)) {
            context.execute(dispatch);
        }
    }

    private void dispatch() {
        pending.set(false);
        if (enabled) {
            handler.run();
        }
    }

    /** Enables or disables the handler; signals while disabled are dropped. */
    public void setEnabled(boolean on) {
        this.enabled = on;
    }

    public AioContext context() {
        return context;
    }

    public String name() {
        return name;
    }
}
