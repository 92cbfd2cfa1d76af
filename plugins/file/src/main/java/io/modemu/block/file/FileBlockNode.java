package io.modemu.block.file;

import io.modemu.aio.AioContext;
import io.modemu.block.BlockCompletion;
import io.modemu.block.BlockNode;
import io.modemu.block.Errno;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An open raw image. Reads and writes go between the file and guest RAM through a direct
 * {@link ByteBuffer} view of the guest RAM segment: the kernel copies straight into guest RAM, the
 * JVM copies nothing.
 */
final class FileBlockNode implements BlockNode {
    private static final Logger log = LoggerFactory.getLogger(FileBlockNode.class);
    /** QEMU's thread pool has 64 workers; two cores here, so a handful does. */
    private static final ExecutorService POOL = Executors.newFixedThreadPool(
            Integer.getInteger("modemu.file.workers", 4), Thread.ofPlatform().name("modemu-file-worker-", 0).daemon(true).factory());
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(1 << 20).asReadOnlyBuffer();

    private final Path path;
    private final FileChannel channel;
    private final long size;
    private final boolean readOnly;
    private final boolean inline;

    FileBlockNode(Path path, FileChannel channel, long size, boolean readOnly, boolean inline) {
        this.path = path;
        this.channel = channel;
        this.size = size;
        this.readOnly = readOnly;
        this.inline = inline;
    }

    @Override
    public String describe() {
        return path.toString();
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public boolean isReadOnly() {
        return readOnly;
    }

    @Override
    public boolean supportsDiscard() {
        return false;
    }

    private interface Io {
        void run() throws IOException;
    }

    /** Runs {@code io} and returns its status: 0, or a negative errno. Never throws. */
    private int status(Io io) {
        try {
            io.run();
            return 0;
        } catch (IOException | RuntimeException e) {
            return statusOf(e);
        }
    }

    private int statusOf(Exception e) {
        if (e instanceof ClosedChannelException) {
            return -Errno.EIO;
        }
        if (e instanceof IOException) {
            log.warn("I/O error on {}: {}", path, e.getMessage());
            return errnoOf((IOException) e);
        }
        log.error("unexpected failure on {}", path, e);
        return -Errno.EIO;
    }

    /** Runs {@code io} on the worker pool (aio=threads) or right here (aio=inline), then completes. */
    private void perform(Io io, BlockCompletion done) {
        if (inline) {
            done.complete(status(io));
            return;
        }
        try {
            POOL.execute(() -> done.complete(status(io)));
        } catch (RejectedExecutionException e) {
            done.complete(-Errno.EIO);
        }
    }

    private static int errnoOf(IOException e) {
        String m = String.valueOf(e.getMessage());
        if (m.contains("No space left")) {
            return -Errno.ENOSPC;
        }
        return -Errno.EIO;
    }

    @Override
    public void read(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
        if (inline) {
            // the common case for a page-cached image: no task, no lambda, straight into guest RAM
            done.complete(readInto(offset, buffer));
            return;
        }
        try {
            POOL.execute(() -> done.complete(readInto(offset, buffer)));
        } catch (RejectedExecutionException e) {
            done.complete(-Errno.EIO);
        }
    }

    private int readInto(long offset, MemorySegment buffer) {
        try {
            ByteBuffer bb = buffer.asByteBuffer();
            long pos = offset;
            while (bb.hasRemaining()) {
                int n = channel.read(bb, pos);
                if (n < 0) {
                    // past the end of a file that shrank under us: the rest reads as zeros
                    buffer.asSlice(bb.position()).fill((byte) 0);
                    break;
                }
                pos += n;
            }
            return 0;
        } catch (IOException | RuntimeException e) {
            return statusOf(e);
        }
    }

    @Override
    public void write(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
        perform(() -> {
            ByteBuffer bb = buffer.asByteBuffer();
            long pos = offset;
            while (bb.hasRemaining()) {
                pos += channel.write(bb, pos);
            }
        }, done);
    }

    @Override
    public void flush(AioContext ctx, BlockCompletion done) {
        perform(() -> channel.force(false), done);
    }

    @Override
    public void discard(AioContext ctx, long offset, long length, BlockCompletion done) {
        // advisory, and Java cannot punch holes: like QEMU's default discard=ignore
        done.complete(0);
    }

    @Override
    public void writeZeroes(AioContext ctx, long offset, long length, BlockCompletion done) {
        perform(() -> {
            long pos = offset;
            long left = length;
            while (left > 0) {
                ByteBuffer z = ZEROES.duplicate();
                z.limit((int) Math.min(z.capacity(), left));
                int n = channel.write(z, pos);
                pos += n;
                left -= n;
            }
        }, done);
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException e) {
            log.warn("closing {} failed: {}", path, e.getMessage());
        }
    }
}
