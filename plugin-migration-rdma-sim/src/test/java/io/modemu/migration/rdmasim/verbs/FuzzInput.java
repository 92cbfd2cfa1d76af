package io.modemu.migration.rdmasim.verbs;

import java.util.Arrays;

/** A fuzz input read front to back, big-endian; past its end every read gives zeros (for the plugin's fuzz harnesses). */
public final class FuzzInput {
    private final byte[] b;
    private int pos;

    public FuzzInput(byte[] b) {
        this.b = b;
    }

    public boolean atEnd() {
        return pos >= b.length;
    }

    public int u8() {
        return pos < b.length ? b[pos++] & 0xff : 0;
    }

    public int u16() {
        return u8() << 8 | u8();
    }

    public int u32() {
        return u16() << 16 | u16();
    }

    /** Up to {@code n} bytes: fewer where the input ends. */
    public byte[] bytes(int n) {
        int k = Math.max(0, Math.min(n, b.length - pos));
        byte[] out = Arrays.copyOfRange(b, pos, pos + k);
        pos += k;
        return out;
    }
}
