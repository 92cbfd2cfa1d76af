package io.modemu.migration.internal;

import io.modemu.migration.MigrationChannel;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The source's reader of the destination's replies on the main channel (thread
 * {@code modemu-migration-rp}): ACCEPT, LOADED, RUNNING complete futures the migration thread waits
 * on; ERROR fails them with the destination's own words and aborts the migration; a lost connection
 * fails them too.
 */
final class ReturnPath implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(ReturnPath.class);

    /** The destination reported a failure; the message is the destination's. */
    static final class DestinationFailed extends IOException {
        private static final long serialVersionUID = 1L;

        DestinationFailed(String message) {
            super(message);
        }
    }

    final CompletableFuture<byte[]> accepted = new CompletableFuture<>();
    final CompletableFuture<Void> loaded = new CompletableFuture<>();
    /** Completes with when (this host's {@code System.nanoTime()}) the destination started running, as near as can be told. */
    final CompletableFuture<Long> running = new CompletableFuture<>();
    private final StreamInput in;
    private final Abort abort;
    private final Thread thread;
    private volatile String destinationError;
    private volatile boolean stopping;
    private long applied;
    private boolean ended;
    /** What to run when LOADED arrives (sending COMMIT), once armed; see {@link #commitOnLoaded}. */
    private Committer committer;
    private boolean loadedEarly;

    /** Sends COMMIT: run by whichever thread sees both LOADED and the armed commit first. */
    interface Committer {
        void commit() throws IOException;
    }

    ReturnPath(MigrationChannel channel, Abort abort) {
        this.in = new StreamInput(channel, new LongAdder(), null);
        this.abort = abort;
        this.thread = Thread.ofPlatform().name("modemu-migration-rp").daemon(true).unstarted(this);
    }

    void start() {
        thread.start();
    }

    /** The destination's error message, if it sent one. */
    String destinationError() {
        return destinationError;
    }

    /** Waits up to {@code millis} for this reader to end (it ends on ERROR, RUNNING or a closed connection). */
    void awaitEnd(long millis) {
        try {
            thread.join(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The channel is about to be closed by the source: a failed read is not news. */
    void stopping() {
        stopping = true;
    }

    @Override
    public void run() {
        try {
            while (true) {
                in.next();
                switch (in.type) {
                    case Wire.ACCEPT -> {
                        if (in.b > Wire.MAX_TOKEN) {
                            throw new IOException("the destination's ACCEPT carries a token of " + in.b + " bytes, more than " + Wire.MAX_TOKEN);
                        }
                        accepted.complete(in.bytes((int) in.b));
                    }
                    case Wire.LOADED -> {
                        Committer c;
                        synchronized (this) {
                            c = committer;
                            loadedEarly = c == null;
                        }
                        if (c != null) {
                            commit(c);
                        }
                    }
                    case Wire.APPLIED -> {
                        synchronized (this) {
                            applied = Math.max(applied, in.b);
                            notifyAll();
                        }
                    }
                    case Wire.RUNNING -> {
                        // the destination's delay between running and answering, if plausible
                        long delay = in.c >= 0 && in.c < 10_000_000_000L ? in.c : 0;
                        running.complete(System.nanoTime() - delay);
                        return;
                    }
                    case Wire.ERROR -> {
                        String msg = new String(in.bytes((int) Math.min(in.b, Wire.MAX_ERROR)), StandardCharsets.UTF_8);
                        destinationError = msg;
                        abort.abort("destination failed: " + msg);
                        failAll(new DestinationFailed(msg));
                        return;
                    }
                    default -> throw new IOException("unexpected " + Wire.typeName(in.type) + " record from the destination");
                }
            }
        } catch (IOException | RuntimeException e) {
            if (!stopping) {
                log.debug("return path ended: {}", e.toString());
            }
            failAll(e instanceof IOException io ? io : new IOException(e.getMessage(), e));
        }
    }

    /**
     * Arms the hand-over: COMMIT is sent by this reader the moment LOADED arrives (one thread
     * hand-off less in the downtime), or at once if it already came. {@link #loaded} completes once
     * COMMIT went out, or fails with why it could not be sent. Called by the migration thread after its
     * last write before COMMIT.
     */
    void commitOnLoaded(Committer c) {
        boolean now;
        synchronized (this) {
            committer = c;
            now = loadedEarly;
        }
        if (now) {
            commit(c);
        }
    }

    private void commit(Committer c) {
        try {
            c.commit();
            loaded.complete(null);
        } catch (IOException | RuntimeException e) {
            loaded.completeExceptionally(e);
        }
    }

    /**
     * Waits until the destination reported pass {@code pass} applied (one-sided RAM).
     *
     * @throws IOException if the destination failed, the connection ended, or nothing came for {@code millis}
     */
    synchronized void awaitApplied(long pass, long millis) throws IOException {
        long end = System.nanoTime() + millis * 1_000_000;
        while (applied < pass) {
            if (ended) {
                throw new IOException("the connection to the destination ended while waiting for it to apply pass " + pass
                        + (destinationError != null ? ": " + destinationError : ""));
            }
            long left = end - System.nanoTime();
            if (left <= 0) {
                throw new java.net.SocketTimeoutException("the destination did not apply pass " + pass + " within " + millis + " ms");
            }
            try {
                wait(Math.max(1, left / 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while waiting for the destination to apply pass " + pass);
            }
        }
    }

    private void failAll(IOException e) {
        synchronized (this) {
            ended = true;
            notifyAll();
        }
        accepted.completeExceptionally(e);
        loaded.completeExceptionally(e);
        running.completeExceptionally(e);
    }
}
