package io.modemu.migration.internal;

import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationStreamException;
import java.util.concurrent.Phaser;

/**
 * The destination's reader of one parallel data channel (thread {@code modemu-multifd-recv-N}):
 * loads PAGES and ZERO records, and at each PASS_END waits on a barrier shared by every data channel,
 * so that no page of the next pass is applied before every channel finished the current one. Ends
 * after the final pass, or on the first error (which terminates the barrier for the others).
 */
final class DataReceiver implements Runnable {
    private final int index;
    private final MigrationChannel channel;
    private final StreamInput in;
    private final RamLoader loader;
    private final Phaser barrier;
    private final Thread thread;
    private volatile Throwable failure;
    private volatile boolean finished;

    DataReceiver(int index, MigrationChannel channel, StreamInput in, RamLoader loader, Phaser barrier) {
        this.index = index;
        this.channel = channel;
        this.in = in;
        this.loader = loader;
        this.barrier = barrier;
        this.thread = Thread.ofPlatform().name("modemu-multifd-recv-" + index).daemon(true).unstarted(this);
    }

    void start() {
        thread.start();
    }

    Throwable failure() {
        return failure;
    }

    boolean finished() {
        return finished;
    }

    /** Nanoseconds since this channel last received bytes. */
    long idleNanos() {
        return in.idleNanos();
    }

    void join(long millis) throws InterruptedException {
        thread.join(millis);
    }

    @Override
    public void run() {
        String where = " on data channel " + index;
        long expected = 1;
        try {
            in.timeout(null);
            while (true) {
                in.next();
                switch (in.type) {
                    case Wire.PAGES -> loader.pages(in, where);
                    case Wire.ZERO -> loader.zero(in, where, expected);
                    case Wire.NOP -> {
                    }
                    case Wire.PASS_END -> {
                        if (in.b != expected || (in.flags & ~Wire.FLAG_FINAL) != 0) {
                            throw new MigrationStreamException("section 'ram': PASS_END" + where + " for pass " + in.b + " (flags " + in.flags
                                    + "), expected pass " + expected);
                        }
                        if (in.c != in.headerCrcBefore) {
                            throw new MigrationStreamException("section 'ram': the record headers" + where + " do not match their checksum (the stream is corrupt)");
                        }
                        expected++;
                        if (barrier.arriveAndAwaitAdvance() < 0) {
                            throw new MigrationStreamException("section 'ram': another data channel failed");
                        }
                        if ((in.flags & Wire.FLAG_FINAL) != 0) {
                            finished = true;
                            return;
                        }
                    }
                    default -> throw new MigrationStreamException("section 'ram': unexpected " + Wire.typeName(in.type) + " record" + where);
                }
            }
        } catch (Throwable t) {
            failure = t;
            barrier.forceTermination();
        }
    }

    @Override
    public String toString() {
        return "data channel " + index + " (" + channel.peer() + ")";
    }
}
