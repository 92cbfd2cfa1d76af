package io.modemu.migration.rdmasim.verbs;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * {@link PeerFuzzing}'s properties over generated peers, a bounded number of tries each
 * ({@code -Dfuzz.tries=N}, default in the POM): a valid handshake then plausible frames with edge
 * fields (PSNs near the victim's, lengths that lie, unknown opcodes and statuses), writes into the
 * peer's table, and requests of the victim's own in between; handshakes made of damaged valid
 * messages; and random bytes.
 */
class PeerPropertiesTest {

    @Property
    void aPeerPlayingFramesByHandNeverHarmsTheVictim(@ForAll("sessions") byte[] input) {
        PeerFuzzing.run(input);
    }

    @Property
    void aDamagedHandshakeNeverHarmsTheVictim(@ForAll("handshakes") byte[] input) {
        PeerFuzzing.run(input);
    }

    @Property(tries = 50)
    void randomBytesAsAPeerNeverHarmTheVictim(@ForAll("randomInputs") byte[] input) {
        PeerFuzzing.run(input);
    }

    @Provide
    Arbitrary<byte[]> randomInputs() {
        return Arbitraries.bytes().array(byte[].class).ofMaxSize(400);
    }

    @Provide
    Arbitrary<byte[]> sessions() {
        return Combinators.combine(Arbitraries.integers().between(0, 1), operation().list().ofMaxSize(20)).as((mode, ops) -> {
            PeerFuzzing.Writer w = new PeerFuzzing.Writer(mode);
            ops.forEach(w::bytes);
            return w.toBytes();
        });
    }

    /** A valid seed's handshake message, damaged: a byte changed, cut, or extended. */
    @Provide
    Arbitrary<byte[]> handshakes() {
        Arbitrary<Integer> modes = Arbitraries.of(2, 3, 4, 6);
        return Combinators.combine(modes, Arbitraries.integers().between(0, 200), Arbitraries.integers().between(0, 255),
                Arbitraries.integers().between(0, 2)).as((mode, at, value, how) -> {
                    byte[] valid = validMessage(mode);
                    byte[] m = switch (how) {
                        case 0 -> {
                            byte[] c = valid.clone();
                            c[at % c.length] = (byte) (int) value;
                            yield c;
                        }
                        case 1 -> java.util.Arrays.copyOf(valid, at % valid.length);
                        default -> {
                            byte[] c = java.util.Arrays.copyOf(valid, valid.length + 1 + at % 8);
                            c[valid.length] = (byte) (int) value;
                            yield c;
                        }
                    };
                    PeerFuzzing.Writer w = new PeerFuzzing.Writer(mode);
                    if (mode == 6) {
                        // REQ and RTU both the input's: the REQ valid but for a table no one has
                        w.handshake(validMessage(2));
                    }
                    return w.handshake(m).toBytes();
                });
    }

    /** A well-formed REQ (or REP, mode 3) naming a table that does not exist, or an RTU (mode 4). */
    private static byte[] validMessage(int mode) {
        if (mode == 4 || mode == 6) {
            return CmMessage.rtu();
        }
        return CmMessage.endpoint(mode == 3 ? CmMessage.REP : CmMessage.REQ, new CmMessage.Endpoint(1, ProcessHandle.current().pid(),
                java.nio.file.Path.of("/dev/shm/modemu-rdmasim-no-such-table"), 0x10001, 1, 1, 7, new byte[0]));
    }

    private static Arbitrary<Integer> psns() {
        return Arbitraries.oneOf(Arbitraries.integers().between(0, 8), Arbitraries.integers(), Arbitraries.of(-1, Integer.MAX_VALUE));
    }

    private static Arbitrary<byte[]> payloads() {
        return Arbitraries.oneOf(Arbitraries.bytes().array(byte[].class).ofMaxSize(64),
                Arbitraries.integers().between(0, 4200).map(byte[]::new));
    }

    private static Arbitrary<byte[]> operation() {
        Arbitrary<Integer> lies = Arbitraries.frequency(net.jqwik.api.Tuple.of(6, 0), net.jqwik.api.Tuple.of(1, 1), net.jqwik.api.Tuple.of(1, 2),
                net.jqwik.api.Tuple.of(1, 3), net.jqwik.api.Tuple.of(1, 4), net.jqwik.api.Tuple.of(1, 5), net.jqwik.api.Tuple.of(1, 6),
                net.jqwik.api.Tuple.of(1, 7));
        Arbitrary<byte[]> message = Combinators.combine(Arbitraries.integers().between(0, 3), psns(), Arbitraries.integers(), lies, payloads())
                .as((op, psn, imm, lie, p) -> new PeerFuzzing.Writer(0).message(op, psn, imm, lie, p).toBytes());
        Arbitrary<byte[]> ack = Combinators.combine(Arbitraries.of(Frame.ACK, Frame.RNR_WAIT), psns())
                .as((t, psn) -> new PeerFuzzing.Writer(0).ack(t, psn).toBytes());
        Arbitrary<byte[]> nak = Combinators.combine(psns(), Arbitraries.oneOf(Arbitraries.of(WcStatus.values()).map(WcStatus::code),
                Arbitraries.integers().between(0, 255)), payloads(), lies).as((psn, code, d, lie) -> new PeerFuzzing.Writer(0).nak(psn, code, d, lie).toBytes());
        Arbitrary<byte[]> notice = Combinators.combine(Arbitraries.of(Frame.ACCESS_VIOLATION, Frame.QP_DOWN), Arbitraries.integers().between(0, 3),
                payloads(), lies).as((t, flags, d, lie) -> new PeerFuzzing.Writer(0).notice(t, flags, d, lie).toBytes());
        Arbitrary<byte[]> table = Combinators.combine(Arbitraries.oneOf(Arbitraries.integers().between(0, 4096),
                Arbitraries.integers().between(SharedTable.HEADER, SharedTable.HEADER + 2048), Arbitraries.integers()),
                Arbitraries.bytes().array(byte[].class).ofMinSize(1).ofMaxSize(16))
                .as((off, b) -> new PeerFuzzing.Writer(0).table(off, b).toBytes());
        Arbitrary<byte[]> send = Arbitraries.integers().between(0, 4200).map(n -> new PeerFuzzing.Writer(0).victimSend(n).toBytes());
        Arbitrary<byte[]> write = Combinators.combine(Arbitraries.integers().between(0, 40 * 1024), Arbitraries.integers().between(0, 8200),
                Arbitraries.of(true, true, true, false)).as((off, n, key) -> new PeerFuzzing.Writer(0).victimWrite(off, n, key).toBytes());
        Arbitrary<byte[]> recv = Arbitraries.just(new PeerFuzzing.Writer(0).victimRecv().toBytes());
        Arbitrary<byte[]> raw = Arbitraries.bytes().array(byte[].class).ofMaxSize(48).map(b -> new PeerFuzzing.Writer(0).raw(b).toBytes());
        // each op written by a Writer of mode 0: drop that mode byte
        return Arbitraries.frequencyOf(net.jqwik.api.Tuple.of(6, message), net.jqwik.api.Tuple.of(3, ack), net.jqwik.api.Tuple.of(1, nak),
                net.jqwik.api.Tuple.of(1, notice), net.jqwik.api.Tuple.of(1, table), net.jqwik.api.Tuple.of(3, send), net.jqwik.api.Tuple.of(3, write),
                net.jqwik.api.Tuple.of(3, recv), net.jqwik.api.Tuple.of(1, raw)).map(b -> java.util.Arrays.copyOfRange(b, 1, b.length));
    }
}
