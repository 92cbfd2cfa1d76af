package io.modemu.migration.rdmasim;

import io.modemu.migration.MigrationChannel;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;

/** A {@link MigrationChannel} (the byte-stream SPI of this branch) over an {@link RdmaSimConnection}. */
public final class RdmaSimChannel implements MigrationChannel {
    private final RdmaSimConnection connection;
    private final InputStream in;
    private final OutputStream out;

    RdmaSimChannel(RdmaSimConnection connection) {
        this.connection = connection;
        this.in = new InputStream() {
            @Override
            public int read() throws IOException {
                byte[] b = new byte[1];
                return read(b, 0, 1) < 0 ? -1 : b[0] & 0xff;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                if (len == 0) {
                    return 0;
                }
                return connection.read(ByteBuffer.wrap(b, off, len), null);
            }
        };
        this.out = new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                connection.write(ByteBuffer.wrap(b, off, len));
            }
        };
    }

    /** The connection, with the one-sided RAM operations. */
    public RdmaSimConnection connection() {
        return connection;
    }

    @Override
    public InputStream input() {
        return in;
    }

    @Override
    public OutputStream output() {
        return out;
    }

    @Override
    public String peer() {
        return connection.peer();
    }

    @Override
    public void close() {
        connection.close();
    }
}
