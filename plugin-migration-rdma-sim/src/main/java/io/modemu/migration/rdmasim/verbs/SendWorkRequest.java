package io.modemu.migration.rdmasim.verbs;

import java.util.List;

/**
 * A request posted to a send queue ({@code ibv_send_wr}), one record per opcode.
 *
 * <p>{@code signaled} asks for a completion on success ({@code IBV_SEND_SIGNALED}); a failed request
 * always completes. As on hardware, the send-queue slots of unsignaled requests are given back
 * only when a later signaled request completes, so a sender that never signals fills its queue.
 */
public sealed interface SendWorkRequest {
    long wrId();

    /** The local buffer: the data sent or written, or where RDMA READ data lands. */
    List<ScatterGatherElement> sgl();

    boolean signaled();

    /** The opcode this request completes with. */
    WcOpcode completionOpcode();

    default long length() {
        long n = 0;
        for (ScatterGatherElement e : sgl()) {
            n += e.length();
        }
        return n;
    }

    /** Two-sided: consumes a receive posted at the peer. */
    record Send(long wrId, List<ScatterGatherElement> sgl, boolean signaled) implements SendWorkRequest {
        public Send {
            sgl = List.copyOf(sgl);
        }

        @Override
        public WcOpcode completionOpcode() {
            return WcOpcode.SEND;
        }
    }

    /** A SEND carrying 32 bits of immediate data to the receiver's completion. */
    record SendWithImmediate(long wrId, List<ScatterGatherElement> sgl, int immediate, boolean signaled) implements SendWorkRequest {
        public SendWithImmediate {
            sgl = List.copyOf(sgl);
        }

        @Override
        public WcOpcode completionOpcode() {
            return WcOpcode.SEND;
        }
    }

    /** One-sided: writes the local buffer at {@code remoteAddress} in the peer's region {@code rkey}. */
    record RdmaWrite(long wrId, List<ScatterGatherElement> sgl, long remoteAddress, int rkey, boolean signaled) implements SendWorkRequest {
        public RdmaWrite {
            sgl = List.copyOf(sgl);
        }

        @Override
        public WcOpcode completionOpcode() {
            return WcOpcode.RDMA_WRITE;
        }
    }

    /** An RDMA WRITE that also consumes a receive at the peer, whose completion carries {@code immediate}. */
    record RdmaWriteWithImmediate(long wrId, List<ScatterGatherElement> sgl, long remoteAddress, int rkey, int immediate,
                                  boolean signaled) implements SendWorkRequest {
        public RdmaWriteWithImmediate {
            sgl = List.copyOf(sgl);
        }

        @Override
        public WcOpcode completionOpcode() {
            return WcOpcode.RDMA_WRITE;
        }
    }

    /** One-sided: reads the peer's region {@code rkey} at {@code remoteAddress} into the local buffer. */
    record RdmaRead(long wrId, List<ScatterGatherElement> sgl, long remoteAddress, int rkey, boolean signaled) implements SendWorkRequest {
        public RdmaRead {
            sgl = List.copyOf(sgl);
        }

        @Override
        public WcOpcode completionOpcode() {
            return WcOpcode.RDMA_READ;
        }
    }
}
