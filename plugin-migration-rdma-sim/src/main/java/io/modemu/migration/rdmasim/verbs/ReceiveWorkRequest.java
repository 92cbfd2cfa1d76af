package io.modemu.migration.rdmasim.verbs;

import java.util.List;

/** A receive buffer posted to a receive queue ({@code ibv_recv_wr}); an inbound message fills its elements in order. */
public record ReceiveWorkRequest(long wrId, List<ScatterGatherElement> sgl) {
    public ReceiveWorkRequest {
        sgl = List.copyOf(sgl);
    }

    public static ReceiveWorkRequest of(long wrId, ScatterGatherElement sge) {
        return new ReceiveWorkRequest(wrId, List.of(sge));
    }

    long capacity() {
        long c = 0;
        for (ScatterGatherElement e : sgl) {
            c += e.length();
        }
        return c;
    }
}
