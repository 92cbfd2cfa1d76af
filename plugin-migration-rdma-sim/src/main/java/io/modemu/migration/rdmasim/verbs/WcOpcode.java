package io.modemu.migration.rdmasim.verbs;

/** What a work completion completes ({@code ibv_wc_opcode}). */
public enum WcOpcode {
    SEND,
    RDMA_WRITE,
    RDMA_READ,
    /** A receive consumed by a SEND. */
    RECV,
    /** A receive consumed by an RDMA WRITE with immediate. */
    RECV_RDMA_WITH_IMM
}
