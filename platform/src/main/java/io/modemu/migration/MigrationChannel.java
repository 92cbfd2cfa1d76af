package io.modemu.migration;

import java.io.Closeable;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * One established migration connection: a reliable, ordered byte stream in each direction. Used
 * by one thread per direction.
 */
public interface MigrationChannel extends Closeable {
    InputStream input();

    OutputStream output();

    /** The peer, for messages (for example {@code 127.0.0.1:4444}). */
    String peer();
}
