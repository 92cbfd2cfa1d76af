package io.modemu.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.aio.DeterministicScheduler;
import io.modemu.block.MemoryBlockNode;
import org.junit.jupiter.api.Test;

class GuestMemoryTest {
    @Test
    void accessesAreBoundsCheckedAndWritesMarkPagesDirty() {
        try (Machine m = TestMachines.machine(new DeterministicScheduler(1), new MemoryBlockNode(4096, false, 0), 0)) {
            GuestMemory mem = m.memory();
            long base = Machine.RAM_BASE;
            long end = base + (1 << 20);
            mem.writeU32(base + 4096 * 3 + 10, 0xdeadbeefL);
            assertThat(mem.readU32(base + 4096 * 3 + 10)).isEqualTo(0xdeadbeefL);
            assertThat(mem.readU16(base + 4096 * 3 + 10)).isEqualTo(0xbeef);
            DirtyBitmap d = mem.blocks().getFirst().dirty();
            assertThat(d.isDirty(3)).isTrue();
            assertThat(d.countDirty()).isEqualTo(1);
            // a write straddling a page boundary marks both pages
            mem.writeU64(base + 4096 * 6 - 4, -1L);
            assertThat(d.isDirty(5)).isTrue();
            assertThat(d.isDirty(6)).isTrue();
            assertThatThrownBy(() -> mem.readU32(end - 2)).isInstanceOf(GuestMemoryException.class)
                    .hasMessage("guest-physical range 0x800ffffe+0x4 is outside guest RAM");
            assertThatThrownBy(() -> mem.slice(base - 1, 2)).isInstanceOf(GuestMemoryException.class);
            assertThatThrownBy(() -> mem.slice(Long.MAX_VALUE, 16)).isInstanceOf(GuestMemoryException.class);
            assertThatThrownBy(() -> mem.slice(base, -1)).isInstanceOf(GuestMemoryException.class);
            assertThat(mem.isRam(end - 8, 8)).isTrue();
            assertThat(mem.isRam(end - 8, 9)).isFalse();
        }
    }

    @Test
    void ramBackedByASharedFileMappingIsVisibleInTheFile(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        java.nio.file.Path file = tmp.resolve("ram");
        try (Machine m = Machine.builder().loopDriver(new DeterministicScheduler(2)).ram(1 << 20).ramFile(file).vcpus(0).build()) {
            m.memory().writeU32(Machine.RAM_BASE + 4096, 0xcafef00dL);
            assertThat(m.memory().blocks().getFirst().backingFile()).contains(file);
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file)) {
                assertThat(ch.size()).isEqualTo(1 << 20);
                java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                ch.read(b, 4096);
                assertThat(Integer.toUnsignedLong(b.flip().getInt())).isEqualTo(0xcafef00dL);
            }
        }
    }

    @Test
    void aMachineRejectsARamSizeThatIsNotWholePages() {
        assertThatThrownBy(() -> Machine.builder().ram(1000).build())
                .hasMessage("-m: RAM size must be a positive multiple of 4 KiB, not 1000");
        assertThatThrownBy(() -> Machine.builder().type("pc").build())
                .hasMessage("-machine: unknown machine type 'pc' (supported: virt)");
    }

    @Test
    void harvestingMovesDirtyBitsAndLosesNone() {
        DirtyBitmap d = new DirtyBitmap(1 << 20);
        d.mark(0, 1);
        d.mark(4096 * 100, 4096 * 2);
        long[] into = new long[d.words()];
        assertThat(d.harvestInto(into)).isEqualTo(3);
        assertThat(d.countDirty()).isZero();
        assertThat(into[0] & 1).isEqualTo(1);
        assertThat(into[1] >>> 36 & 3).isEqualTo(3);
        d.markAll();
        assertThat(d.countDirty()).isEqualTo(256);
    }

    @Test
    void anyDirtyAnswersForEveryRangeAsThePagesOneByOneWould() {
        DirtyBitmap d = new DirtyBitmap(300L * DirtyBitmap.PAGE_SIZE);
        long[] dirty = {0, 63, 64, 130, 191, 299};
        for (long p : dirty) {
            d.markPage(p);
        }
        for (long first = 0; first < 300; first++) {
            for (long count = 0; first + count <= 300; count++) {
                boolean expected = false;
                for (long p = first; p < first + count; p++) {
                    expected |= d.isDirty(p);
                }
                assertThat(d.anyDirty(first, count)).as("pages [%d, +%d)", first, count).isEqualTo(expected);
            }
        }
        assertThat(d.anyDirty(1, 62)).isFalse();
        assertThat(d.anyDirty(65, 65)).isFalse();
        assertThat(d.anyDirty(131, 60)).isFalse();
        assertThatThrownBy(() -> d.anyDirty(299, 2)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> d.anyDirty(-1, 1)).isInstanceOf(IndexOutOfBoundsException.class);
    }
}
