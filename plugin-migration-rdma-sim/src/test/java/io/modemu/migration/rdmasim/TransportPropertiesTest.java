package io.modemu.migration.rdmasim;

import java.io.ByteArrayOutputStream;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;

/**
 * {@link TransportFuzzing}'s properties over generated exchanges, a bounded number of tries each
 * ({@code -Dfuzz.tries=N}): stream messages and RAM writes with malformed messages of either end
 * among them (edge lengths, every known type and unknown ones, registration requests and answers with
 * edge fields), and random bytes.
 */
class TransportPropertiesTest {
    @Property
    void malformedMessagesAmongAGoodExchangeNeverHarmEitherEnd(@ForAll("exchanges") byte[] input) {
        TransportFuzzing.run(input);
    }

    @Property(tries = 50)
    void randomBytesAsAnExchangeNeverHarmEitherEnd(@ForAll("randomInputs") byte[] input) {
        TransportFuzzing.run(input);
    }

    @Provide
    Arbitrary<byte[]> randomInputs() {
        return Arbitraries.bytes().array(byte[].class).ofMaxSize(300);
    }

    @Provide
    Arbitrary<byte[]> exchanges() {
        return Combinators.combine(Arbitraries.integers().between(0, 1), operation().list().ofMaxSize(12)).as((mode, ops) -> {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.write(mode);
            ops.forEach(out::writeBytes);
            return out.toByteArray();
        });
    }

    private static Arbitrary<Integer> edgeInts() {
        return Arbitraries.oneOf(Arbitraries.integers().between(-2, 8), Arbitraries.of(255, 256, 257, 2047, 2048, 65535, Integer.MAX_VALUE,
                Integer.MIN_VALUE), Arbitraries.integers());
    }

    private static Arbitrary<byte[]> messages() {
        Arbitrary<byte[]> typed = Combinators.combine(Arbitraries.integers().between(0, 6), Arbitraries.bytes().array(byte[].class).ofMaxSize(40))
                .as((type, body) -> {
                    byte[] m = new byte[body.length + 1];
                    m[0] = (byte) (int) type;
                    System.arraycopy(body, 0, m, 1, body.length);
                    return m;
                });
        return Arbitraries.oneOf(typed, Arbitraries.just(new byte[0]), Arbitraries.bytes().array(byte[].class).ofMaxSize(64));
    }

    private static Arbitrary<byte[]> operation() {
        Arbitrary<byte[]> sourceRaw = messages().map(m -> new TransportFuzzing.Writer(0).sourceRaw(m).op());
        Arbitrary<byte[]> stream = Arbitraries.oneOf(Arbitraries.bytes().array(byte[].class).ofMaxSize(64),
                Arbitraries.integers().between(0, 2000).map(byte[]::new)).map(p -> new TransportFuzzing.Writer(0).sourceStream(p).op());
        Arbitrary<byte[]> register = Combinators.combine(edgeInts(), edgeInts(), edgeInts())
                .as((b, f, c) -> new TransportFuzzing.Writer(0).sourceRegister(b, f, c).op());
        Arbitrary<byte[]> destinationRaw = messages().map(m -> new TransportFuzzing.Writer(0).destinationRaw(m).op());
        Arbitrary<byte[]> registered = Combinators.combine(edgeInts(), edgeInts(), edgeInts(), Arbitraries.bytes().array(byte[].class).ofMaxSize(40))
                .as((b, f, c, rest) -> new TransportFuzzing.Writer(0).destinationRegistered(b, f, c, rest).op());
        Arbitrary<byte[]> write = Combinators.combine(Arbitraries.integers().between(0, 2047), Arbitraries.integers().between(0, 63))
                .as((page, pages) -> new TransportFuzzing.Writer(0).writeRam(page, pages).op());
        return Arbitraries.frequencyOf(Tuple.of(4, stream), Tuple.of(4, write), Tuple.of(1, sourceRaw), Tuple.of(1, register),
                Tuple.of(1, destinationRaw), Tuple.of(1, registered));
    }
}
