package io.modemu.migration.rdmasim;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * What the destination tells the source about its guest RAM once it registered it (QEMU's RAM block
 * list with remote keys): the registration mode, the chunk size, and per block its name, size, virtual
 * address at the destination and, with pin-all, the remote key of the whole block.
 *
 * <p>Encoding: magic u32, version u8, pin-all u8, chunk shift u8, block count u16; per block name
 * (u16 length + UTF-8), size u64, address u64, rkey u32. Decoding checks every field: the token comes
 * from the peer.
 */
record RamToken(boolean pinAll, int chunkShift, List<Block> blocks) {
    static final int MAGIC = 0x5253544b; // "RSTK"
    static final int VERSION = 1;
    static final int MAX_BLOCKS = 1024;

    record Block(String name, long size, long address, int rkey) {
    }

    byte[] encode() {
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            DataOutputStream out = new DataOutputStream(bytes);
            out.writeInt(MAGIC);
            out.writeByte(VERSION);
            out.writeByte(pinAll ? 1 : 0);
            out.writeByte(chunkShift);
            out.writeShort(blocks.size());
            for (Block b : blocks) {
                byte[] name = b.name().getBytes(StandardCharsets.UTF_8);
                out.writeShort(name.length);
                out.write(name);
                out.writeLong(b.size());
                out.writeLong(b.address());
                out.writeInt(b.rkey());
            }
            return bytes.toByteArray();
        } catch (IOException impossible) {
            throw new IllegalStateException(impossible);
        }
    }

    /** @throws IOException saying what is wrong with the destination's token */
    static RamToken decode(byte[] token) throws IOException {
        try {
            DataInputStream in = new DataInputStream(new ByteArrayInputStream(token));
            if (in.readInt() != MAGIC) {
                throw new IOException("rdma-sim: the destination's RAM token is not an rdma-sim token");
            }
            int version = in.readUnsignedByte();
            if (version != VERSION) {
                throw new IOException("rdma-sim: the destination's RAM token has version " + version + ", this side reads " + VERSION);
            }
            boolean pinAll = in.readUnsignedByte() == 1;
            int shift = in.readUnsignedByte();
            if (shift < 12 || shift > 30) {
                throw new IOException("rdma-sim: the destination's RAM token has chunk shift " + shift + ", outside 12..30");
            }
            int n = in.readUnsignedShort();
            if (n == 0 || n > MAX_BLOCKS) {
                throw new IOException("rdma-sim: the destination's RAM token lists " + n + " blocks");
            }
            List<Block> blocks = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                int len = in.readUnsignedShort();
                if (len == 0 || len > 256) {
                    throw new IOException("rdma-sim: the destination's RAM token has a block name of " + len + " bytes");
                }
                String name = new String(in.readNBytes(len), StandardCharsets.UTF_8);
                long size = in.readLong();
                long address = in.readLong();
                int rkey = in.readInt();
                if (size <= 0 || address == 0 || address + size < address) {
                    throw new IOException("rdma-sim: the destination's RAM token describes block '" + name + "' as " + size + " bytes at 0x"
                            + Long.toHexString(address));
                }
                blocks.add(new Block(name, size, address, rkey));
            }
            if (in.available() != 0) {
                throw new IOException("rdma-sim: the destination's RAM token has " + in.available() + " trailing bytes");
            }
            return new RamToken(pinAll, shift, List.copyOf(blocks));
        } catch (java.io.EOFException e) {
            throw new IOException("rdma-sim: the destination's RAM token is truncated", e);
        }
    }
}
