package io.modemu.migration.internal;

/**
 * Why a migration must stop now, set by any thread (cancel, a failing worker, the return path) and
 * polled by the migration's threads between records.
 */
final class Abort {
    /** Thrown by {@link #check()}: the migration is being torn down. */
    static final class Aborted extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Aborted(String message) {
            super(message, null, false, false);
        }
    }

    private volatile String reason;
    private volatile boolean cancelled;

    /** Records the first reason; later ones are ignored. */
    synchronized void abort(String why) {
        if (reason == null) {
            reason = why;
        }
    }

    void cancel() {
        cancelled = true;
        abort("cancelled");
    }

    boolean isCancelled() {
        return cancelled;
    }

    boolean isAborted() {
        return reason != null;
    }

    String reason() {
        return reason;
    }

    void check() {
        String r = reason;
        if (r != null) {
            throw new Aborted(r);
        }
    }
}
