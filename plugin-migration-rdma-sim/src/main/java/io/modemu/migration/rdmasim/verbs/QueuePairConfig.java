package io.modemu.migration.rdmasim.verbs;

import java.util.Objects;

/**
 * How a queue pair is created ({@code ibv_qp_init_attr}, reliable connected).
 *
 * @param sendCq     where send-queue completions go
 * @param recvCq     where receive-queue completions go (may be the same queue)
 * @param maxSendWr  send requests outstanding at once
 * @param maxRecvWr  receives posted at once
 * @param maxSendSge scatter/gather elements per send request
 * @param maxRecvSge scatter/gather elements per receive
 * @param signalAll  every send request completes, signaled or not ({@code sq_sig_all})
 */
public record QueuePairConfig(CompletionQueue sendCq, CompletionQueue recvCq, int maxSendWr, int maxRecvWr, int maxSendSge,
                              int maxRecvSge, boolean signalAll) {
    public QueuePairConfig {
        Objects.requireNonNull(sendCq, "sendCq");
        Objects.requireNonNull(recvCq, "recvCq");
        if (maxSendWr < 1 || maxRecvWr < 1 || maxSendWr > 1 << 16 || maxRecvWr > 1 << 16) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT,
                    "queue pair depths max_send_wr " + maxSendWr + " and max_recv_wr " + maxRecvWr + " must lie in 1..65536");
        }
        if (maxSendSge < 1 || maxRecvSge < 1 || maxSendSge > 32 || maxRecvSge > 32) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT,
                    "max_send_sge " + maxSendSge + " and max_recv_sge " + maxRecvSge + " must lie in 1..32");
        }
    }

    /** One completion queue for both directions, 4 scatter/gather elements, explicit signaling. */
    public static QueuePairConfig of(CompletionQueue cq, int maxSendWr, int maxRecvWr) {
        return new QueuePairConfig(cq, cq, maxSendWr, maxRecvWr, 4, 4, false);
    }

    public QueuePairConfig withSignalAll(boolean all) {
        return new QueuePairConfig(sendCq, recvCq, maxSendWr, maxRecvWr, maxSendSge, maxRecvSge, all);
    }
}
