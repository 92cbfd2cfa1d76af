package io.modemu.guest.diskverify;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

class BlockStampTest {
    private final BlockStamp stamp = new BlockStamp();

    private MemorySegment stamped(long sector, long generation) {
        MemorySegment block = MemorySegment.ofArray(new byte[4096]);
        stamp.stamp(block, sector, generation);
        return block;
    }

    @Test
    void aStampedBlockVerifies() {
        assertThat(stamp.verify(stamped(800, 3), 800, 3)).isNull();
    }

    @Test
    void theWrongGenerationIsNamed() {
        assertThat(stamp.verify(stamped(800, 3), 800, 4)).isEqualTo("sector 800: generation 3, expected 4");
    }

    @Test
    void aBlockFromElsewhereIsNamed() {
        assertThat(stamp.verify(stamped(808, 3), 800, 3)).isEqualTo("sector 800: stamped for sector 808");
    }

    @Test
    void everyFlippedPayloadBitIsCaught() {
        MemorySegment block = stamped(16, 1);
        for (long at = 24; at < 4096; at += 97) {
            if (at % 512 < 24) {
                continue;
            }
            byte b = block.get(ValueLayout.JAVA_BYTE, at);
            block.set(ValueLayout.JAVA_BYTE, at, (byte) (b ^ 0x10));
            assertThat(stamp.verify(block, 16, 1)).as("byte %d", at).contains("checksum mismatch");
            block.set(ValueLayout.JAVA_BYTE, at, b);
        }
        assertThat(stamp.verify(block, 16, 1)).isNull();
    }

    @Test
    void zerosAreNotAStamp() {
        assertThat(stamp.verify(MemorySegment.ofArray(new byte[512]), 0, 1)).isEqualTo("sector 0: no stamp");
    }
}
