package io.modemu.guest.diskverify;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.machine.GuestMemory;
import io.modemu.machine.Machine;
import io.modemu.machine.RamBlock;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The image check against disk-verify's state: acknowledged writes present, outstanding ones either way, nothing else. */
class DiskVerifyImageCheckTest {
    private static final int BLOCKS = 8;
    private static final int BLOCK = 4096;
    private static final int SECTORS = BLOCK / BlockStamp.SECTOR;

    private final Arena arena = Arena.ofAuto();
    private final BlockStamp stamp = new BlockStamp();
    private GuestMemory memory;
    private DiskVerifyState state;
    private MemorySegment image;

    @BeforeEach
    void setUp() {
        memory = new GuestMemory(List.of(new RamBlock("ram", Machine.RAM_BASE, arena.allocate(1 << 20, 4096), null)));
        state = new DiskVerifyState(memory, Machine.RAM_BASE);
        image = arena.allocate((long) BLOCKS * BLOCK);
    }

    private void initialize() {
        state.initialize(new DiskVerifyConfig(BLOCKS, BLOCK, 4, 0, 64 << 10, false));
    }

    /** Generation {@code g}, write cursor {@code w}: the guest saw blocks below w written in g, the rest hold g - 1. */
    private void at(long g, long w) {
        initialize();
        state.u64(DiskVerifyState.O_GENERATION, g);
        state.u64(DiskVerifyState.O_WRITE_CURSOR, w);
        for (int b = 0; b < BLOCKS; b++) {
            write(b, b < w ? g : g - 1);
        }
    }

    private void write(int block, long generation) {
        MemorySegment data = image.asSlice((long) block * BLOCK, BLOCK);
        if (generation == 0) {
            data.fill((byte) 0);
        } else {
            stamp.stamp(data, (long) block * SECTORS, generation);
        }
    }

    private String check() {
        return DiskVerifyImageCheck.check(memory, image);
    }

    @Test
    void anImageHoldingEveryAcknowledgedWritePasses() {
        at(1, 0);
        assertThat(check()).as("nothing written yet").isNull();
        at(1, 3);
        assertThat(check()).isNull();
        at(5, BLOCKS);
        assertThat(check()).isNull();
        at(5, 2);
        assertThat(check()).isNull();
    }

    @Test
    void aLostAcknowledgedWriteIsFound() {
        at(3, 5);
        write(2, 2);
        assertThat(check()).startsWith("block 2 (generation 3, write cursor 5): expected generation 3: sector 16: generation 2, expected 3");
    }

    @Test
    void aWriteThatWasNeverSubmittedIsFound() {
        at(3, 5);
        write(6, 3);
        assertThat(check()).startsWith("block 6 ").contains("expected generation 2");
        at(1, 2);
        write(5, 1);
        assertThat(check()).isEqualTo("block 5 (generation 1, write cursor 2): expected generation 0: sector 40: stamped (generation 1) but never written");
    }

    @Test
    void anOutstandingWriteMayHoldEitherGenerationButWhole() {
        at(3, 5);
        state.slot(1, DiskVerifyState.SLOT_WRITING, 4);
        write(4, 2);
        assertThat(check()).as("not carried out yet").isNull();
        write(4, 3);
        assertThat(check()).as("carried out").isNull();
        stamp.stamp(image.asSlice(4L * BLOCK + 2 * BlockStamp.SECTOR, BlockStamp.SECTOR), 4L * SECTORS + 2, 2);
        assertThat(check()).as("torn").isEqualTo("block 4 (generation 3, write cursor 5, its write outstanding): expected generation 2 or 3: sector 34: generation 2, expected 3");
        state.slot(1, DiskVerifyState.SLOT_FREE, 0);
        write(4, 2);
        assertThat(check()).as("acknowledged once the slot is free").startsWith("block 4 ");
    }

    @Test
    void aDamagedOrMisplacedBlockIsFound() {
        at(2, BLOCKS);
        image.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 3L * BLOCK + 100, (byte) 1);
        assertThat(check()).isEqualTo("block 3 (generation 2, write cursor 8): expected generation 2: sector 24: checksum mismatch");
        at(2, BLOCKS);
        MemorySegment.copy(image, 1L * BLOCK, image, 6L * BLOCK, BLOCK);
        assertThat(check()).contains("block 6 ").contains("stamped for sector 8");
    }

    @Test
    void withoutStateOrWithATooSmallImageItSaysSo() {
        assertThat(check()).isEqualTo("disk-verify has no state in guest RAM (it never ran here)");
        initialize();
        image = image.asSlice(0, BLOCK);
        assertThat(check()).isEqualTo("the image has 4096 bytes, disk-verify writes 8 blocks of 4096");
    }
}
