package io.modemu.migration.rdmasim;

import io.modemu.machine.RamBlock;
import io.modemu.migration.MigrationChannel;
import io.modemu.migration.RemoteRamTarget;
import io.modemu.migration.RemoteRamWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;

/** A {@link MigrationChannel} over an {@link RdmaSimConnection}, with the one-sided RAM role of its end. */
public abstract sealed class RdmaSimChannel implements MigrationChannel {
    final RdmaSimConnection connection;

    RdmaSimChannel(RdmaSimConnection connection) {
        this.connection = connection;
    }

    /** The connection underneath (tests inject faults through it). */
    public RdmaSimConnection connection() {
        return connection;
    }

    @Override
    public String peer() {
        return connection.peer();
    }

    @Override
    public void write(ByteBuffer... srcs) throws IOException {
        connection.write(srcs);
    }

    @Override
    public int read(ByteBuffer dst, Duration timeout) throws IOException {
        return connection.read(dst, timeout);
    }

    @Override
    public void close() {
        connection.close();
    }

    /** The source's end: writes guest RAM pages into the destination's with RDMA WRITE. */
    static final class Outgoing extends RdmaSimChannel implements RemoteRamWriter {
        Outgoing(RdmaSimConnection connection) {
            super(connection);
        }

        @Override
        public void open(List<RamBlock> blocks, byte[] token) throws IOException {
            connection.openRam(blocks, token);
        }

        @Override
        public void write(int blockIndex, long offset, long length) throws IOException {
            connection.writeRam(blockIndex, offset, length);
        }

        @Override
        public void flush() throws IOException {
            connection.flushRam();
        }
    }

    /** The destination's end: exposes guest RAM (registered, file-backed) to the source's writes. */
    static final class Incoming extends RdmaSimChannel implements RemoteRamTarget {
        Incoming(RdmaSimConnection connection) {
            super(connection);
        }

        @Override
        public byte[] expose(List<RamBlock> blocks) throws IOException {
            return connection.exposeRam(blocks);
        }

        @Override
        public void withdraw() {
            connection.withdrawRam();
        }
    }
}
