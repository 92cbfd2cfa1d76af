package io.modemu.migration.rdmasim.verbs;

/** A send request on its way through the send queue. Fields other than the request are guarded by the queue pair's lock. */
final class SendWqe {
    final SendWorkRequest wr;
    final long postedAt;
    final boolean signaled;
    int psn;
    boolean rnrWaiting;
    boolean done;
    /** When a message still unacknowledged then has used up the retry budget (System.nanoTime). */
    long ackDeadline;

    SendWqe(SendWorkRequest wr, long postedAt, boolean signaled) {
        this.wr = wr;
        this.postedAt = postedAt;
        this.signaled = signaled;
    }

    /** Places data straight into the peer's memory, hence ordered after every message still unacknowledged. */
    boolean oneSided() {
        return wr instanceof SendWorkRequest.RdmaWrite || wr instanceof SendWorkRequest.RdmaWriteWithImmediate
                || wr instanceof SendWorkRequest.RdmaRead;
    }
}
