package io.modemu.migration.rdmasim.verbs;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The connection manager's handshake on a new connection, after InfiniBand CM's REQ / REP (or REJ) /
 * RTU: each side announces its device (the table the other maps), its queue pair and its
 * receiver-not-ready retry count, and carries the application's private data.
 *
 * <p>Every message: magic u64, version u16, kind u8. REQ and REP: device id u64, pid u64, table path
 * (u16 length + UTF-8), queue pair number u32, generation u32, protection domain u32, rnr_retry u8,
 * private data (u8 length + bytes). REJ: private data, then a detail (u16 length + UTF-8). RTU: nothing.
 * Everything read is bounds-checked; a malformed message fails the handshake with an error naming
 * the peer.
 */
final class CmMessage {
    static final long MAGIC = 0x314D43534452444DL;
    static final int VERSION = 1;
    static final int REQ = 1;
    static final int REP = 2;
    static final int REJ = 3;
    static final int RTU = 4;
    private static final int MAX_DETAIL = 1024;

    record Endpoint(long deviceId, long pid, Path table, int qpNumber, int qpGeneration, int pd, int rnrRetry, byte[] privateData) {
    }

    /** A message read: its kind, and the endpoint (REQ, REP) or the rejection (REJ). */
    record Received(int kind, Endpoint endpoint, byte[] rejectData, String rejectDetail) {
    }

    private CmMessage() {
    }

    static int maxPrivateData(int kind) {
        return switch (kind) {
            case REQ -> ConnectionParameters.MAX_CONNECT_PRIVATE_DATA;
            case REP -> ConnectionParameters.MAX_ACCEPT_PRIVATE_DATA;
            case REJ -> ConnectionParameters.MAX_REJECT_PRIVATE_DATA;
            default -> 0;
        };
    }

    static byte[] endpoint(int kind, Endpoint e) {
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            DataOutputStream out = header(bytes, kind);
            out.writeLong(e.deviceId());
            out.writeLong(e.pid());
            byte[] path = e.table().toString().getBytes(StandardCharsets.UTF_8);
            out.writeShort(path.length);
            out.write(path);
            out.writeInt(e.qpNumber());
            out.writeInt(e.qpGeneration());
            out.writeInt(e.pd());
            out.writeByte(e.rnrRetry());
            out.writeByte(e.privateData().length);
            out.write(e.privateData());
            return bytes.toByteArray();
        } catch (IOException impossible) {
            throw new IllegalStateException(impossible);
        }
    }

    static byte[] reject(byte[] privateData, String detail) {
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            DataOutputStream out = header(bytes, REJ);
            out.writeByte(privateData.length);
            out.write(privateData);
            byte[] d = detail.getBytes(StandardCharsets.UTF_8);
            int n = Math.min(d.length, MAX_DETAIL);
            out.writeShort(n);
            out.write(d, 0, n);
            return bytes.toByteArray();
        } catch (IOException impossible) {
            throw new IllegalStateException(impossible);
        }
    }

    static byte[] rtu() {
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            header(bytes, RTU);
            return bytes.toByteArray();
        } catch (IOException impossible) {
            throw new IllegalStateException(impossible);
        }
    }

    private static DataOutputStream header(ByteArrayOutputStream bytes, int kind) throws IOException {
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeLong(MAGIC);
        out.writeShort(VERSION);
        out.writeByte(kind);
        return out;
    }

    static void write(SocketChannel ch, byte[] message) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(message);
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /**
     * Reads one message.
     *
     * @throws IOException naming {@code peer} for a malformed message, a timeout, or a closed connection
     */
    static Received read(DataInputStream in, String peer) throws IOException {
        try {
            return readMessage(in, peer);
        } catch (java.io.EOFException e) {
            throw new IOException("rdma-sim: " + peer + " closed the connection in the middle of the handshake", e);
        }
    }

    private static Received readMessage(DataInputStream in, String peer) throws IOException {
        long magic = in.readLong();
        if (magic != MAGIC) {
            throw new IOException(String.format("rdma-sim: %s is not an rdma-sim connection manager (magic 0x%x)", peer, magic));
        }
        int version = in.readUnsignedShort();
        if (version != VERSION) {
            throw new IOException("rdma-sim: " + peer + " speaks handshake version " + version + ", this side " + VERSION);
        }
        int kind = in.readUnsignedByte();
        switch (kind) {
            case REQ, REP -> {
                long deviceId = in.readLong();
                long pid = in.readLong();
                int pathLength = in.readUnsignedShort();
                if (pathLength == 0 || pathLength > SharedTable.MAX_PATH) {
                    throw new IOException("rdma-sim: " + peer + " announced a table path of " + pathLength + " bytes");
                }
                String path = new String(exactly(in, pathLength), StandardCharsets.UTF_8);
                int qpn = in.readInt();
                int gen = in.readInt();
                int pd = in.readInt();
                int rnr = in.readUnsignedByte();
                if (rnr > 7) {
                    throw new IOException("rdma-sim: " + peer + " announced rnr_retry " + rnr + ", outside 0..7");
                }
                byte[] data = privateData(in, kind, peer);
                Path table;
                try {
                    table = Path.of(path);
                } catch (RuntimeException e) {
                    throw new IOException("rdma-sim: " + peer + " announced an invalid table path: " + e.getMessage());
                }
                return new Received(kind, new Endpoint(deviceId, pid, table, qpn, gen, pd, rnr, data), null, null);
            }
            case REJ -> {
                byte[] data = privateData(in, kind, peer);
                int n = in.readUnsignedShort();
                if (n > MAX_DETAIL) {
                    throw new IOException("rdma-sim: " + peer + " sent a rejection detail of " + n + " bytes");
                }
                return new Received(kind, null, data, new String(exactly(in, n), StandardCharsets.UTF_8));
            }
            case RTU -> {
                return new Received(kind, null, null, null);
            }
            default -> throw new IOException("rdma-sim: " + peer + " sent handshake message kind " + kind + ", which is unknown");
        }
    }

    /** {@code n} bytes, or {@link java.io.EOFException} if the message ends first. */
    private static byte[] exactly(DataInputStream in, int n) throws IOException {
        byte[] b = new byte[n];
        in.readFully(b);
        return b;
    }

    private static byte[] privateData(DataInputStream in, int kind, String peer) throws IOException {
        int n = in.readUnsignedByte();
        if (n > maxPrivateData(kind)) {
            throw new IOException("rdma-sim: " + peer + " sent " + n + " bytes of private data, more than the " + maxPrivateData(kind) + " allowed");
        }
        byte[] b = in.readNBytes(n);
        if (b.length != n) {
            throw new IOException("rdma-sim: " + peer + " closed the connection in the middle of the handshake");
        }
        return b;
    }
}
