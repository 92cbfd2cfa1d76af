package io.modemu.migration.rdmasim.verbs;

/**
 * The states of a reliable-connected queue pair ({@code ibv_qp_state}); SQD and SQE are not modelled.
 *
 * <pre>
 *   RESET → INIT → RTR → RTS
 *   any state → RESET, any state → ERROR, INIT → INIT, RTS → RTS
 * </pre>
 */
public enum QpState {
    /** Created or reset: nothing may be posted, nothing is processed. */
    RESET,
    /** Receive requests may be posted but are not processed; sends may not be posted. */
    INIT,
    /** Ready to receive: inbound messages are processed; sends may not be posted. */
    RTR,
    /** Ready to send: fully operational. */
    RTS,
    /** Broken: posted and outstanding requests complete with {@link WcStatus#WR_FLUSH_ERR}. */
    ERROR;

    boolean canMoveTo(QpState to) {
        if (to == RESET || to == ERROR) {
            return true;
        }
        return switch (this) {
            case RESET -> to == INIT;
            case INIT -> to == INIT || to == RTR;
            case RTR -> to == RTS;
            case RTS -> to == RTS;
            case ERROR -> false;
        };
    }
}
