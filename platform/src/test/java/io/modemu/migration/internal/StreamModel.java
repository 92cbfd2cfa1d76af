package io.modemu.migration.internal;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * The test's own reading of the migration stream layout documented in {@link Wire}, independent of
 * the destination's code: splits a fuzz input into channels, walks the records of a channel, finds
 * the pages a stream names, and repairs the checksums so that a mutated stream gets past them.
 *
 * <p>A fuzz input is a mode byte followed by channels, each a big-endian u32 length and that many
 * bytes (a length beyond the end takes what is left): the main channel first, then the data
 * channels. Mode bit 0 asks for {@link #repair}; the other bits are ignored.
 */
final class StreamModel {
    static final int MODE_REPAIR = 1;

    /** One record: where its header starts, its fields, where its payload starts and how long it is. */
    record Record(int at, int type, int flags, int a, long b, long c, int payloadAt, long payloadLength) {
    }

    private StreamModel() {
    }

    /** The channels of a fuzz input (mode byte skipped). */
    static List<byte[]> channels(byte[] input) {
        List<byte[]> out = new ArrayList<>();
        int pos = 1;
        while (pos < input.length && out.size() < 8) {
            int room = input.length - pos;
            long len = room >= 4 ? Integer.toUnsignedLong(ByteBuffer.wrap(input, pos, 4).getInt()) : room;
            pos += Math.min(4, room);
            int n = (int) Math.min(len, input.length - pos);
            byte[] c = new byte[n];
            System.arraycopy(input, pos, c, 0, n);
            out.add(c);
            pos += n;
        }
        if (out.isEmpty()) {
            out.add(new byte[0]);
        }
        return out;
    }

    /** A fuzz input holding {@code channels}, with {@code mode}. */
    static byte[] input(int mode, List<byte[]> channels) {
        int size = 1;
        for (byte[] c : channels) {
            size += 4 + c.length;
        }
        ByteBuffer b = ByteBuffer.allocate(size);
        b.put((byte) mode);
        for (byte[] c : channels) {
            b.putInt(c.length).put(c);
        }
        return b.array();
    }

    static int mode(byte[] input) {
        return input.length == 0 ? 0 : input[0] & 0xff;
    }

    /** Payload bytes that follow a record header of {@code type} with field {@code b}, on either direction. */
    static long payloadLength(int type, long b) {
        return switch (type) {
            case Wire.CONFIG, Wire.DEVICE, Wire.ACCEPT, Wire.ERROR -> b;
            case Wire.PAGES -> b * Wire.PAGE;
            default -> 0;
        };
    }

    /** The records of one channel after its {@code headerBytes}-byte header, up to the first that does not fit. */
    static List<Record> records(byte[] channel, int headerBytes) {
        List<Record> out = new ArrayList<>();
        ByteBuffer b = ByteBuffer.wrap(channel);
        int pos = headerBytes;
        while (pos + Wire.HEADER <= channel.length) {
            int type = b.get(pos) & 0xff;
            long bf = Integer.toUnsignedLong(b.getInt(pos + 4));
            long payload = payloadLength(type, bf);
            out.add(new Record(pos, type, b.get(pos + 1) & 0xff, Short.toUnsignedInt(b.getShort(pos + 2)), bf, b.getLong(pos + 8), pos + Wire.HEADER,
                    payload));
            if (payload > channel.length - pos - Wire.HEADER) {
                break;
            }
            pos += Wire.HEADER + (int) payload;
        }
        return out;
    }

    /**
     * Recomputes every checksum of a stream as a source would have written it: the CONFIG and DEVICE
     * payload CRCs, the running header CRC of each PASS_END and of EOF, EOF's page count (every
     * channel), and the session of each data channel's header (the main channel's). In place.
     */
    static void repair(List<byte[]> channels) {
        long pages = 0;
        for (byte[] ch : channels) {
            for (Record r : records(ch, Wire.STREAM_HEADER)) {
                if (r.type() == Wire.PAGES || r.type() == Wire.ZERO) {
                    pages += r.b();
                }
            }
        }
        byte[] main = channels.getFirst();
        for (int i = 0; i < channels.size(); i++) {
            byte[] ch = channels.get(i);
            if (i > 0 && ch.length >= Wire.STREAM_HEADER && main.length >= Wire.STREAM_HEADER) {
                System.arraycopy(main, 16, ch, 16, 16);
            }
            ByteBuffer b = ByteBuffer.wrap(ch);
            CRC32C headers = new CRC32C();
            for (Record r : records(ch, Wire.STREAM_HEADER)) {
                int at = r.at();
                switch (r.type()) {
                    case Wire.CONFIG -> {
                        if (fits(ch, r)) {
                            b.putLong(at + 8, crc(ch, r));
                        }
                    }
                    case Wire.DEVICE -> {
                        if (fits(ch, r)) {
                            b.putLong(at + 8, (r.c() & 0xffff_ffff_0000_0000L) | crc(ch, r));
                        }
                    }
                    case Wire.PASS_END -> b.putLong(at + 8, headers.getValue());
                    case Wire.EOF -> {
                        b.putInt(at + 4, (int) headers.getValue());
                        b.putLong(at + 8, pages);
                    }
                    default -> {
                    }
                }
                headers.update(ch, at, Wire.HEADER);
            }
        }
    }

    private static boolean fits(byte[] ch, Record r) {
        return r.payloadLength() <= ch.length - r.payloadAt();
    }

    private static long crc(byte[] ch, Record r) {
        CRC32C c = new CRC32C();
        c.update(ch, r.payloadAt(), (int) r.payloadLength());
        return c.getValue();
    }

    /**
     * Every page of RAM block 0 that some PAGES or ZERO record of any channel names: the only pages a
     * destination may write. A page index at or beyond {@code pageCount} is ignored.
     */
    static boolean[] namedPages(List<byte[]> channels, int pageCount) {
        boolean[] named = new boolean[pageCount];
        for (byte[] ch : channels) {
            for (Record r : records(ch, Wire.STREAM_HEADER)) {
                if ((r.type() == Wire.PAGES || r.type() == Wire.ZERO) && r.a() == 0) {
                    long first = Long.divideUnsigned(r.c(), Wire.PAGE);
                    for (long p = first; p < first + r.b() && p >= 0 && p < pageCount; p++) {
                        named[(int) p] = true;
                    }
                }
            }
        }
        return named;
    }

    /** Whether the main channel carries, in this order, CONFIG first, RAM_DONE, EOF and COMMIT: what a completed migration needs at least. */
    static boolean looksComplete(byte[] main) {
        List<Record> rs = records(main, Wire.STREAM_HEADER);
        if (rs.isEmpty() || rs.getFirst().type() != Wire.CONFIG) {
            return false;
        }
        int want = 0;
        int[] order = {Wire.RAM_DONE, Wire.EOF, Wire.COMMIT};
        for (Record r : rs) {
            if (want < order.length && r.type() == order[want]) {
                want++;
            }
        }
        return want == order.length;
    }
}
