package io.modemu.virtio;

/**
 * One descriptor chain popped from a virtqueue, flattened (indirect tables followed): the
 * device-readable buffers first, then the device-writable ones, each checked to lie inside guest
 * RAM. A queue reuses one instance for every pop, so its arrays hold up to the queue size entries.
 *
 * <p>Not thread-safe: it belongs to the context of the queue that fills it.
 */
public final class DescriptorChain {
    final long[] addr;
    final int[] len;
    int head = -1;
    int count;
    int readable;
    long readableBytes;
    long writableBytes;

    public DescriptorChain(int capacity) {
        this.addr = new long[capacity];
        this.len = new int[capacity];
    }

    void reset(int headIndex) {
        head = headIndex;
        count = 0;
        readable = 0;
        readableBytes = 0;
        writableBytes = 0;
    }

    /** The head descriptor index: the id the used ring reports back. */
    public int head() {
        return head;
    }

    /** Number of buffers, readable and writable. */
    public int count() {
        return count;
    }

    /** Number of device-readable buffers; they come first. */
    public int readableCount() {
        return readable;
    }

    public int writableCount() {
        return count - readable;
    }

    public long readableBytes() {
        return readableBytes;
    }

    public long writableBytes() {
        return writableBytes;
    }

    /** Guest-physical address of buffer {@code i} (readable ones first). */
    public long address(int i) {
        return addr[i];
    }

    public int length(int i) {
        return len[i];
    }
}
