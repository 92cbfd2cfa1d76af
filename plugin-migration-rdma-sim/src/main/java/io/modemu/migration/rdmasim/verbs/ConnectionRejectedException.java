package io.modemu.migration.rdmasim.verbs;

import java.io.IOException;

/** The listener rejected the connection ({@code RDMA_CM_EVENT_REJECTED}); carries its private data. */
public final class ConnectionRejectedException extends IOException {
    private static final long serialVersionUID = 1L;
    private final byte[] privateData;

    ConnectionRejectedException(String message, byte[] privateData) {
        super(message);
        this.privateData = privateData.clone();
    }

    /** What the listener passed to {@link ConnectRequest#reject}. */
    public byte[] privateData() {
        return privateData.clone();
    }
}
