package io.modemu.migration.internal;

import io.modemu.machine.RamBlock;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The source's parallel data channels ({@code multifd}): one sender thread per channel takes chunks
 * of the bitmap from a small queue, checks the pages for zero and sends them. A pass ends with a
 * PASS_END on every channel; the destination lets no channel apply a page of the next pass before
 * every channel finished the current one.
 *
 * <p>Threads: {@link #dispatch}, {@link #sync} and {@link #close} are called by the migration
 * thread; the senders are {@code modemu-multifd-N}.
 */
final class MultifdSender implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(MultifdSender.class);
    private static final long POLL_MS = 50;

    private sealed interface Job permits Chunk, Sync, Stop {
    }

    /** {@code zeros}: per word, the pages known to be zero without looking, or null. */
    private record Chunk(int block, long firstWord, long[] words, long[] zeros) implements Job {
    }

    private record Sync(long pass, boolean last, CountDownLatch done) implements Job {
    }

    private record Stop() implements Job {
    }

    private final List<Sender> senders = new ArrayList<>();
    private final Abort abort;
    private int next;

    MultifdSender(List<StreamOutput> outputs, List<RamBlock> blocks, RateLimiter limiter, MigrationProgress progress, Abort abort) {
        this.abort = abort;
        for (int i = 0; i < outputs.size(); i++) {
            Sender s = new Sender(i, outputs.get(i), new PageScanner(blocks, outputs.get(i), null, limiter, progress, null));
            senders.add(s);
        }
        for (Sender s : senders) {
            s.thread.start();
        }
    }

    /** Queues a chunk of bitmap words for the next sender, waiting while its queue is full. */
    void dispatch(int block, long firstWord, long[] words, long[] zeros, Runnable onWait) {
        Chunk c = new Chunk(block, firstWord, words, zeros);
        for (int tries = 0; ; tries++) {
            Sender s = senders.get(next);
            next = (next + 1) % senders.size();
            abort.check();
            if (s.queue.offer(c)) {
                return;
            }
            if (tries >= senders.size()) {
                try {
                    if (s.queue.offer(c, POLL_MS, TimeUnit.MILLISECONDS)) {
                        return;
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new Abort.Aborted("interrupted");
                }
                onWait.run();
            }
        }
    }

    /** Ends pass {@code pass} on every channel and waits until each sender wrote its PASS_END. */
    void sync(long pass, boolean last, Runnable onWait) {
        CountDownLatch done = new CountDownLatch(senders.size());
        for (Sender s : senders) {
            put(s, new Sync(pass, last, done), onWait);
        }
        try {
            while (!done.await(POLL_MS, TimeUnit.MILLISECONDS)) {
                abort.check();
                onWait.run();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Abort.Aborted("interrupted");
        }
        abort.check();
    }

    private void put(Sender s, Job j, Runnable onWait) {
        try {
            while (!s.queue.offer(j, POLL_MS, TimeUnit.MILLISECONDS)) {
                abort.check();
                onWait.run();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Abort.Aborted("interrupted");
        }
    }

    /** Pages the data channels put in their streams. Call after the last sync. */
    long pagesInStream() {
        long n = 0;
        for (Sender s : senders) {
            n += s.scanner.pagesInStream();
        }
        return n;
    }

    /** Stops the senders (their channels are closed by the owner) and waits for them. */
    @Override
    public void close() {
        for (Sender s : senders) {
            s.queue.clear();
            s.queue.offer(new Stop());
            s.thread.interrupt();
        }
        for (Sender s : senders) {
            try {
                s.thread.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            if (s.thread.isAlive()) {
                log.warn("multifd sender {} did not stop within 5 s", s.index);
            }
        }
    }

    private final class Sender implements Runnable {
        final int index;
        final StreamOutput out;
        final PageScanner scanner;
        final BlockingQueue<Job> queue = new ArrayBlockingQueue<>(4);
        final Thread thread;

        Sender(int index, StreamOutput out, PageScanner scanner) {
            this.index = index;
            this.out = out;
            this.scanner = scanner;
            this.thread = Thread.ofPlatform().name("modemu-multifd-" + index).daemon(true).unstarted(this);
        }

        @Override
        public void run() {
            try {
                while (true) {
                    Job j = queue.take();
                    switch (j) {
                        case Chunk c -> {
                            for (int w = 0; w < c.words().length; w++) {
                                if (c.words()[w] != 0) {
                                    abort.check();
                                    scanner.word(c.block(), c.firstWord() + w, c.words()[w], c.zeros() == null ? 0 : c.zeros()[w]);
                                }
                            }
                            scanner.finish();
                        }
                        case Sync s -> {
                            out.record(Wire.PASS_END, s.last() ? Wire.FLAG_FINAL : 0, 0, s.pass(), out.headerCrc());
                            out.flush();
                            s.done().countDown();
                        }
                        case Stop s -> {
                            return;
                        }
                    }
                }
            } catch (InterruptedException e) {
                // closing
            } catch (Abort.Aborted e) {
                // the migration is being torn down; its reason is already recorded
            } catch (IOException | RuntimeException e) {
                abort.abort("data channel " + index + " (" + out.channel().peer() + "): " + describe(e));
            }
        }
    }

    static String describe(Throwable t) {
        return t.getMessage() != null ? t.getMessage() : t.getClass().getSimpleName();
    }
}
