package io.modemu.virtio.blk;

import io.modemu.guest.virtio.VirtioBlkGuest;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** A completion sink that remembers every completion by tag (status and used length). */
final class Completions implements VirtioBlkGuest.Completion {
    record Done(int status, int usedLen) {
    }

    final Map<Long, Done> byTag = new ConcurrentHashMap<>();

    @Override
    public void completed(long tag, int status, int usedLen) {
        if (byTag.put(tag, new Done(status, usedLen)) != null) {
            throw new AssertionError("tag " + tag + " completed twice");
        }
    }

    int count() {
        return byTag.size();
    }

    int status(long tag) {
        Done d = byTag.get(tag);
        if (d == null) {
            throw new AssertionError("tag " + tag + " has not completed");
        }
        return d.status();
    }

    /** Polls queue {@code q} of {@code guest} until {@code n} completions in total arrived. */
    void awaitCount(Harness h, VirtioBlkGuest guest, int q, int n) {
        h.awaitTrue(() -> {
            guest.ackInterrupt();
            guest.poll(q, this, Integer.MAX_VALUE);
            return count() >= n;
        }, n + " completions on queue " + q + " (have " + count() + ")");
    }
}
