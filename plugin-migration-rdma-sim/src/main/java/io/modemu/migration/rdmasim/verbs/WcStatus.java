package io.modemu.migration.rdmasim.verbs;

/** Completion status ({@code ibv_wc_status}); {@link #code()} is the verbs value. */
public enum WcStatus {
    SUCCESS(0),
    /** A message longer than the device allows, or longer than the receive buffer it landed in. */
    LOC_LEN_ERR(1),
    /** An internal inconsistency while processing the request on this side. */
    LOC_QP_OP_ERR(2),
    /** A scatter/gather element that does not lie in a valid local memory region with the needed access. */
    LOC_PROT_ERR(4),
    /** The queue pair was in, or went to, the error state before this request was processed. */
    WR_FLUSH_ERR(5),
    /** The responder found the request invalid (for example longer than its receive buffer). */
    REM_INV_REQ_ERR(9),
    /** The responder refused the remote key, the access rights or the address range. */
    REM_ACCESS_ERR(10),
    /** The responder could not complete the request because of a local problem there. */
    REM_OP_ERR(11),
    /** The peer stopped acknowledging: it died, the link was cut, or it stopped responding. */
    RETRY_EXC_ERR(12),
    /** The responder had no receive posted for longer than the receiver-not-ready retries allow. */
    RNR_RETRY_EXC_ERR(13);

    private final int code;

    WcStatus(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    static WcStatus fromCode(int code) {
        for (WcStatus s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        return null;
    }
}
