package io.modemu.migration;

import java.nio.charset.StandardCharsets;

/**
 * Reads a section written by {@link StateWriter}, never trusting it: every read is bounds-checked and
 * a failure names the section and the field.
 */
public final class StateReader {
    private final String section;
    private final byte[] data;
    private int pos;

    public StateReader(String section, byte[] data) {
        this.section = section;
        this.data = data;
    }

    private void need(int n, String field) {
        if (n < 0 || data.length - pos < n) {
            throw new MigrationStreamException("section '" + section + "': truncated while reading " + field);
        }
    }

    public int u8(String field) {
        need(1, field);
        return data[pos++] & 0xff;
    }

    public boolean bool(String field) {
        int v = u8(field);
        if (v > 1) {
            throw fail(field, "is " + v + ", not 0 or 1");
        }
        return v == 1;
    }

    public int u16(String field) {
        need(2, field);
        int v = (data[pos] & 0xff) << 8 | (data[pos + 1] & 0xff);
        pos += 2;
        return v;
    }

    public long u32(String field) {
        need(4, field);
        long v = 0;
        for (int i = 0; i < 4; i++) {
            v = v << 8 | (data[pos++] & 0xff);
        }
        return v;
    }

    public long u64(String field) {
        need(8, field);
        long v = 0;
        for (int i = 0; i < 8; i++) {
            v = v << 8 | (data[pos++] & 0xff);
        }
        return v;
    }

    /** A value checked against {@code [min, max]}. */
    public long u32(String field, long min, long max) {
        long v = u32(field);
        if (v < min || v > max) {
            throw fail(field, "is " + v + ", outside " + min + ".." + max);
        }
        return v;
    }

    public byte[] bytes(String field, int maxLength) {
        long len = u32(field + " length");
        if (len > maxLength) {
            throw fail(field, "is " + len + " bytes long, more than " + maxLength);
        }
        need((int) len, field);
        byte[] b = new byte[(int) len];
        System.arraycopy(data, pos, b, 0, b.length);
        pos += b.length;
        return b;
    }

    public String string(String field, int maxLength) {
        return new String(bytes(field, maxLength), StandardCharsets.UTF_8);
    }

    /** Fails unless every byte was read. */
    public void expectEnd() {
        if (pos != data.length) {
            throw new MigrationStreamException("section '" + section + "': " + (data.length - pos) + " unexpected trailing bytes");
        }
    }

    public MigrationStreamException fail(String field, String problem) {
        return new MigrationStreamException("section '" + section + "': " + field + " " + problem);
    }

    public String section() {
        return section;
    }
}
