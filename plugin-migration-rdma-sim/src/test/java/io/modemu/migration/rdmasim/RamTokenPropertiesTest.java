package io.modemu.migration.rdmasim;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * The destination's RAM token is the one message of the transport a source decodes whole before any
 * check of its own: whatever the bytes, decoding gives a token that keeps its promises or an
 * {@link IOException} saying what is wrong, never another exception.
 */
class RamTokenPropertiesTest {
    @Property
    void aDamagedTokenDecodesToAValidOneOrFailsWithAReason(@ForAll("damaged") byte[] token) {
        check(token);
    }

    @Property(tries = 100)
    void randomBytesDecodeToAValidTokenOrFailWithAReason(@ForAll("random") byte[] token) {
        check(token);
    }

    private static void check(byte[] token) {
        RamToken t;
        try {
            t = RamToken.decode(token);
        } catch (IOException e) {
            assertThat(e.getMessage()).startsWith("rdma-sim: the destination's RAM token");
            return;
        }
        assertThat(t.chunkShift()).isBetween(12, 30);
        assertThat(t.blocks()).isNotEmpty().hasSizeLessThanOrEqualTo(RamToken.MAX_BLOCKS);
        for (RamToken.Block b : t.blocks()) {
            assertThat(b.size()).isPositive();
            assertThat(b.address()).isNotZero();
            assertThat(b.address() + b.size()).as("no block wraps around the address space").isGreaterThan(b.address());
        }
    }

    @Provide
    Arbitrary<byte[]> random() {
        return Arbitraries.bytes().array(byte[].class).ofMaxSize(200);
    }

    /** A valid token with one byte changed, cut short, or extended. */
    @Provide
    Arbitrary<byte[]> damaged() {
        byte[] valid = new RamToken(false, 20, List.of(new RamToken.Block("ram0", 1L << 30, 0x7f00_0000_0000L, 0),
                new RamToken.Block("ram1", 1L << 20, 0x7f10_0000_0000L, 0x201))).encode();
        return Combinators.combine(Arbitraries.integers().between(0, valid.length - 1), Arbitraries.integers().between(0, 255),
                Arbitraries.integers().between(0, 2)).as((at, value, how) -> {
                    byte[] t = switch (how) {
                        case 0 -> valid.clone();
                        case 1 -> java.util.Arrays.copyOf(valid, at);
                        default -> java.util.Arrays.copyOf(valid, valid.length + 1 + at % 4);
                    };
                    if (how != 1) {
                        t[how == 0 ? at : valid.length] = (byte) (int) value;
                    }
                    return t;
                });
    }
}
