package io.modemu.migration.rdmasim.verbs;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.StandardCharsets;

/**
 * A frame on the connection's socket, which stands in for the wire of a reliable connection: two-sided
 * messages and their acknowledgements, and the error notices the peer's adapter would see as NAKs or
 * time-outs. One-sided data never goes through it.
 *
 * <p>Header, 24 bytes, big-endian: type u8, code u8 (message opcode or completion status), flags u16,
 * psn u32, immediate u32, reserved u32, length u64; then {@code length} bytes (a SEND payload, or a
 * UTF-8 detail for NAK and error notices). Everything read is checked: an unknown type or an
 * out-of-range length is a protocol violation that takes the link down, never a crash.
 */
final class Frame {
    static final int HEADER = 24;
    static final int MAX_DETAIL = 4096;

    /** A SEND, SEND with immediate or RDMA WRITE with immediate: consumes a receive. */
    static final int MSG = 1;
    /** The responder placed message {@code psn}. */
    static final int ACK = 2;
    /** Message {@code psn} found no receive and waits for one (the requester stops its ack timer). */
    static final int RNR_WAIT = 3;
    /** Message {@code psn} failed at the responder with status {@code code}; detail follows. */
    static final int NAK = 4;
    /** The requester refused a one-sided request against the responder's memory; detail follows. */
    static final int ACCESS_VIOLATION = 5;
    /** The sender's queue pair left RTS: flag 1 = orderly disconnect, 0 = error; detail follows. */
    static final int QP_DOWN = 6;

    static final int OP_SEND = 0;
    static final int OP_SEND_IMM = 1;
    static final int OP_WRITE_IMM = 2;

    final int type;
    final int code;
    final int flags;
    final int psn;
    final int immediate;
    final long length;

    Frame(int type, int code, int flags, int psn, int immediate, long length) {
        this.type = type;
        this.code = code;
        this.flags = flags;
        this.psn = psn;
        this.immediate = immediate;
        this.length = length;
    }

    static byte[] encode(int type, int code, int flags, int psn, int immediate, long length, byte[] body) {
        byte[] out = new byte[HEADER + (body == null ? 0 : body.length)];
        ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.BIG_ENDIAN);
        b.put((byte) type).put((byte) code).putShort((short) flags).putInt(psn).putInt(immediate).putInt(0).putLong(length);
        if (body != null) {
            b.put(body);
        }
        return out;
    }

    static byte[] message(int op, int psn, int immediate, long length, byte[] payload) {
        return encode(MSG, op, 0, psn, immediate, length, payload);
    }

    static byte[] ack(int psn) {
        return encode(ACK, 0, 0, psn, 0, 0, null);
    }

    static byte[] rnrWait(int psn) {
        return encode(RNR_WAIT, 0, 0, psn, 0, 0, null);
    }

    static byte[] nak(int psn, WcStatus status, String detail) {
        byte[] d = detailBytes(detail);
        return encode(NAK, status.code(), 0, psn, 0, d.length, d);
    }

    static byte[] accessViolation(String detail) {
        byte[] d = detailBytes(detail);
        return encode(ACCESS_VIOLATION, 0, 0, 0, 0, d.length, d);
    }

    static byte[] qpDown(boolean orderly, String detail) {
        byte[] d = detailBytes(detail);
        return encode(QP_DOWN, 0, orderly ? 1 : 0, 0, 0, d.length, d);
    }

    private static byte[] detailBytes(String detail) {
        byte[] d = detail.getBytes(StandardCharsets.UTF_8);
        if (d.length > MAX_DETAIL) {
            byte[] t = new byte[MAX_DETAIL];
            System.arraycopy(d, 0, t, 0, MAX_DETAIL);
            return t;
        }
        return d;
    }

    /**
     * Reads the next header.
     *
     * @throws EOFException          when the peer closed the connection
     * @throws ProtocolException     when the header is malformed
     */
    static Frame readHeader(ReadableByteChannel ch, ByteBuffer scratch) throws IOException {
        scratch.clear().limit(HEADER);
        readFully(ch, scratch);
        scratch.flip();
        int type = scratch.get() & 0xff;
        int code = scratch.get() & 0xff;
        int flags = scratch.getShort() & 0xffff;
        int psn = scratch.getInt();
        int imm = scratch.getInt();
        scratch.getInt();
        long length = scratch.getLong();
        if (type < MSG || type > QP_DOWN) {
            throw new ProtocolException("frame type " + type + " is unknown");
        }
        if (length < 0) {
            throw new ProtocolException("frame length " + length + " is negative");
        }
        if (type == MSG && code > OP_WRITE_IMM) {
            throw new ProtocolException("message opcode " + code + " is unknown");
        }
        if ((type == ACK || type == RNR_WAIT) && length != 0) {
            throw new ProtocolException("acknowledgement for PSN " + psn + " carries " + length + " bytes");
        }
        if ((type == NAK || type == ACCESS_VIOLATION || type == QP_DOWN) && length > MAX_DETAIL) {
            throw new ProtocolException("error notice carries " + length + " bytes, more than " + MAX_DETAIL);
        }
        if (type == NAK && WcStatus.fromCode(code) == null) {
            throw new ProtocolException("NAK for PSN " + psn + " has unknown status " + code);
        }
        return new Frame(type, code, flags, psn, imm, length);
    }

    /** Reads this frame's detail text (NAK and error notices). */
    String readDetail(ReadableByteChannel ch) throws IOException {
        ByteBuffer b = ByteBuffer.allocate((int) length);
        readFully(ch, b);
        return new String(b.array(), StandardCharsets.UTF_8);
    }

    static void readFully(ReadableByteChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new EOFException("the peer closed the connection");
            }
        }
    }

    /** Reads and drops {@code n} bytes. */
    static void skip(ReadableByteChannel ch, long n, ByteBuffer scratch) throws IOException {
        while (n > 0) {
            scratch.clear().limit((int) Math.min(scratch.capacity(), n));
            readFully(ch, scratch);
            n -= scratch.limit();
        }
    }

    /** The peer broke the frame protocol. */
    static final class ProtocolException extends IOException {
        private static final long serialVersionUID = 1L;

        ProtocolException(String message) {
            super(message);
        }
    }
}
