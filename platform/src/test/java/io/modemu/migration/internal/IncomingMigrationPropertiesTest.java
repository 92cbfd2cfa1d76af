package io.modemu.migration.internal;

import io.modemu.migration.MigrationStatus;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * The migration fuzz targets' properties ({@link MigrationFuzzing}) over generated inputs, a bounded
 * number of tries each ({@code -Dfuzz.tries=N}, default in the POM): real recorded streams with a few
 * structural edits (record fields set to edge values, records dropped, duplicated or swapped, payload
 * bytes changed, the stream cut) with or without the checksums repaired; a valid stream header followed
 * by random bytes; random replies to a real source.
 */
class IncomingMigrationPropertiesTest {
    private static List<List<byte[]>> seeds;

    @BeforeContainer
    static void loadSeeds() {
        seeds = new ArrayList<>();
        for (byte[] s : MigrationFuzzing.seeds("incomingStream")) {
            seeds.add(StreamModel.channels(s));
        }
    }

    @Property
    void anEditedRealStreamFailsCleanlyOrCompletes(@ForAll("editedStreams") byte[] input) {
        MigrationFuzzing.incoming(input);
    }

    @Property
    void aValidHeaderThenRandomBytesFailsCleanly(@ForAll("randomStreams") byte[] input) {
        org.assertj.core.api.Assertions.assertThat(MigrationFuzzing.incoming(input).status()).isEqualTo(MigrationStatus.FAILED);
    }

    @Property
    void garbageRepliesLeaveTheSourceRunningIntact(@ForAll("replies") byte[] replies) {
        MigrationFuzzing.returnPath(replies);
    }

    /** One structural edit, applied to the channel {@code channel} (modulo the channel count). */
    record Edit(int kind, int channel, int pick, int field, long value) {
    }

    @Provide
    Arbitrary<byte[]> editedStreams() {
        Arbitrary<Edit> edit = Combinators.combine(Arbitraries.integers().between(0, 7), Arbitraries.integers().between(0, 3),
                Arbitraries.integers().greaterOrEqual(0), Arbitraries.integers().between(0, 4), interestingLongs()).as(Edit::new);
        return Combinators.combine(Arbitraries.integers().between(0, seeds.size() - 1), edit.list().ofMinSize(1).ofMaxSize(4),
                Arbitraries.frequency(net.jqwik.api.Tuple.of(4, true), net.jqwik.api.Tuple.of(1, false)))
                .as((seed, edits, repair) -> {
                    List<byte[]> channels = new ArrayList<>();
                    for (byte[] c : seeds.get(seed)) {
                        channels.add(c.clone());
                    }
                    for (Edit e : edits) {
                        int ch = e.channel() % channels.size();
                        channels.set(ch, apply(channels.get(ch), e));
                    }
                    return StreamModel.input(repair ? StreamModel.MODE_REPAIR : 0, channels);
                });
    }

    private static Arbitrary<Long> interestingLongs() {
        return Arbitraries.oneOf(Arbitraries.of(0L, 1L, 2L, 0xffL, 0xffffL, 0x1_0000L, 0x7fff_ffffL, 0xffff_ffffL, 0x1_0000_0000L, Long.MAX_VALUE, -1L,
                        (long) MigrationFuzzing.PAGES, MigrationFuzzing.PAGES - 1L, MigrationFuzzing.RAM, MigrationFuzzing.RAM - Wire.PAGE,
                        (long) Wire.MAX_PAGES_PER_RECORD, Wire.MAX_PAGES_PER_RECORD + 1L, (long) Wire.MAX_CONFIG, (long) Wire.MAX_DEVICE),
                Arbitraries.longs(), Arbitraries.longs().between(0, 64), Arbitraries.integers().between(1, 0x10).map(i -> (long) i << 32));
    }

    /** Applies one edit to a channel; returns the channel (perhaps a new array). */
    static byte[] apply(byte[] ch, Edit e) {
        List<StreamModel.Record> rs = StreamModel.records(ch, Wire.STREAM_HEADER);
        if (rs.isEmpty()) {
            return ch;
        }
        StreamModel.Record r = rs.get(e.pick() % rs.size());
        ByteBuffer b = ByteBuffer.wrap(ch);
        switch (e.kind()) {
            case 0, 1 -> { // a header field
                switch (e.field()) {
                    case 0 -> b.put(r.at(), (byte) e.value());
                    case 1 -> b.put(r.at() + 1, (byte) e.value());
                    case 2 -> b.putShort(r.at() + 2, (short) e.value());
                    case 3 -> b.putInt(r.at() + 4, (int) e.value());
                    default -> b.putLong(r.at() + 8, e.value());
                }
                return ch;
            }
            case 2 -> { // a payload byte (configuration, device state, page data)
                if (r.payloadLength() > 0 && r.payloadAt() + r.payloadLength() <= ch.length) {
                    int at = r.payloadAt() + (int) Long.remainderUnsigned(e.value(), r.payloadLength());
                    ch[at] = (byte) (ch[at] ^ (1 + e.field()) ^ (e.value() >>> 8));
                }
                return ch;
            }
            case 3 -> { // drop the record
                return splice(ch, r.at(), end(ch, r), new byte[0]);
            }
            case 4 -> { // duplicate it
                int end = end(ch, r);
                return splice(ch, end, end, java.util.Arrays.copyOfRange(ch, r.at(), end));
            }
            case 5 -> { // swap it with the next one
                int i = rs.indexOf(r);
                if (i + 1 >= rs.size()) {
                    return ch;
                }
                StreamModel.Record n = rs.get(i + 1);
                int end = end(ch, n);
                byte[] first = java.util.Arrays.copyOfRange(ch, r.at(), n.at());
                byte[] second = java.util.Arrays.copyOfRange(ch, n.at(), end);
                byte[] both = new byte[first.length + second.length];
                System.arraycopy(second, 0, both, 0, second.length);
                System.arraycopy(first, 0, both, second.length, first.length);
                return splice(ch, r.at(), end, both);
            }
            case 6 -> { // cut the stream inside or after it
                int at = r.at() + (int) Long.remainderUnsigned(e.value(), Math.max(1, end(ch, r) - r.at() + 1));
                return java.util.Arrays.copyOf(ch, Math.min(at, ch.length));
            }
            default -> { // a byte of the stream header
                ch[(int) Long.remainderUnsigned(e.value(), Wire.STREAM_HEADER)] ^= (byte) (1 << e.field());
                return ch;
            }
        }
    }

    private static int end(byte[] ch, StreamModel.Record r) {
        return (int) Math.min(ch.length, r.payloadAt() + r.payloadLength());
    }

    private static byte[] splice(byte[] ch, int from, int to, byte[] with) {
        byte[] out = new byte[ch.length - (to - from) + with.length];
        System.arraycopy(ch, 0, out, 0, from);
        System.arraycopy(with, 0, out, from, with.length);
        System.arraycopy(ch, to, out, from + with.length, ch.length - to);
        return out;
    }

    @Provide
    Arbitrary<byte[]> randomStreams() {
        Arbitrary<byte[]> tail = Arbitraries.bytes().array(byte[].class).ofMaxSize(2048);
        return Combinators.combine(Arbitraries.integers().between(0, 2), tail, Arbitraries.of(true, false)).as((header, bytes, repair) -> {
            byte[] main = seeds.getFirst().getFirst();
            int keep = switch (header) {
                case 0 -> 0;
                case 1 -> Wire.STREAM_HEADER;
                default -> Wire.STREAM_HEADER + Wire.HEADER + (int) StreamModel.records(main, Wire.STREAM_HEADER).getFirst().payloadLength();
            };
            byte[] ch = new byte[keep + bytes.length];
            System.arraycopy(main, 0, ch, 0, keep);
            System.arraycopy(bytes, 0, ch, keep, bytes.length);
            return StreamModel.input(repair ? StreamModel.MODE_REPAIR : 0, List.of(ch));
        });
    }

    @Provide
    Arbitrary<byte[]> replies() {
        Arbitrary<Integer> type = Arbitraries.frequencyOf(
                net.jqwik.api.Tuple.of(3, Arbitraries.of(Wire.ACCEPT, Wire.LOADED, Wire.RUNNING, Wire.APPLIED, Wire.ERROR)),
                net.jqwik.api.Tuple.of(1, Arbitraries.integers().between(0, 255)));
        Arbitrary<byte[]> record = Combinators.combine(type, Arbitraries.integers().between(0, 255), Arbitraries.frequencyOf(
                        net.jqwik.api.Tuple.of(4, Arbitraries.longs().between(0, 40)), net.jqwik.api.Tuple.of(1, Arbitraries.longs().between(0, 0xffff_ffffL))),
                Arbitraries.longs(), Arbitraries.bytes().array(byte[].class).ofMaxSize(40))
                .as((t, flags, b, c, payload) -> {
                    ByteBuffer h = ByteBuffer.allocate(Wire.HEADER + payload.length);
                    h.put((byte) (int) t).put((byte) (int) flags).putShort((short) 0).putInt((int) (long) b).putLong(c).put(payload);
                    return h.array();
                });
        return Arbitraries.oneOf(record.list().ofMaxSize(6).map(l -> {
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            l.forEach(out::writeBytes);
            return out.toByteArray();
        }), Arbitraries.bytes().array(byte[].class).ofMaxSize(256));
    }
}
