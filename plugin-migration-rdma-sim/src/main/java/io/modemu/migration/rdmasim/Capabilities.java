package io.modemu.migration.rdmasim;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * What the source asks for in its connect private data, and the destination confirms in its accept
 * (QEMU's RDMACapabilities): a magic, a version and flags. 8 bytes, well within rdma_cm's 56.
 */
record Capabilities(boolean pinAll) {
    static final int MAGIC = 0x52534d47; // "RSMG"
    static final int VERSION = 1;
    static final int PIN_ALL = 1;

    byte[] encode() {
        return ByteBuffer.allocate(8).putInt(MAGIC).put((byte) VERSION).put((byte) (pinAll ? PIN_ALL : 0)).putShort((short) 0).array();
    }

    /**
     * @throws IOException naming {@code peer} when the data is not an rdma-sim migration offer this build understands
     */
    static Capabilities decode(byte[] data, String peer) throws IOException {
        if (data.length < 8) {
            throw new IOException("rdma-sim: " + peer + " sent " + data.length + " bytes of connection data, not an rdma-sim migration");
        }
        ByteBuffer b = ByteBuffer.wrap(data);
        int magic = b.getInt();
        int version = b.get() & 0xff;
        int flags = b.get() & 0xff;
        if (magic != MAGIC) {
            throw new IOException(String.format("rdma-sim: %s is not an rdma-sim migration peer (magic 0x%08x)", peer, magic));
        }
        if (version != VERSION) {
            throw new IOException("rdma-sim: " + peer + " speaks rdma-sim migration version " + version + ", this side " + VERSION);
        }
        if ((flags & ~PIN_ALL) != 0) {
            throw new IOException("rdma-sim: " + peer + " asks for unknown capabilities 0x" + Integer.toHexString(flags));
        }
        return new Capabilities((flags & PIN_ALL) != 0);
    }
}
