package io.modemu.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.aio.DeterministicScheduler;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Guest RAM's I/O view ({@link RamBlock#ioSegment()}), what {@link GuestMemory#slice} hands out. */
class RamIoViewTest {
    private static Machine machine() {
        return Machine.builder().loopDriver(new DeterministicScheduler(3)).ram(1 << 20).vcpus(0).build();
    }

    @Test
    void theBuildRunsThePlatformWithNativeAccessAsTheLauncherDoes() {
        // without it the I/O view silently falls back to RAM's own session: the tests below would test nothing
        assertThat(Machine.class.getModule().isNativeAccessEnabled())
                .as("surefire's argLine (modemu.jvm.flags) has --enable-native-access=io.modemu.platform").isTrue();
    }

    @Test
    void slicesAreTheSameMemoryInASessionOfTheirOwnAndDieWithTheMachine(@TempDir Path tmp) throws Exception {
        MemorySegment ram;
        MemorySegment slice;
        try (Machine m = machine()) {
            GuestMemory mem = m.memory();
            RamBlock block = mem.blocks().getFirst();
            ram = block.segment();
            slice = mem.slice(Machine.RAM_BASE + 8192, 4096);
            assertThat(block.ioSegment().address()).isEqualTo(ram.address());
            assertThat(block.ioSegment().byteSize()).isEqualTo(ram.byteSize());
            assertThat(slice.scope()).isNotEqualTo(ram.scope());
            assertThat(slice.address()).isEqualTo(ram.address() + 8192);
            // a read through NIO into the view (as a block driver does) lands in guest RAM
            Path file = tmp.resolve("data");
            Files.write(file, new byte[] {1, 2, 3, 4});
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                ByteBuffer bb = slice.asByteBuffer();
                assertThat(ch.read(bb, 0)).isEqualTo(4);
            }
            assertThat(mem.readU32(Machine.RAM_BASE + 8192)).isEqualTo(0x04030201L);
            mem.writeU8(Machine.RAM_BASE + 8192 + 100, 0x5a);
            assertThat(slice.get(ValueLayout.JAVA_BYTE, 100)).isEqualTo((byte) 0x5a);
        }
        assertThat(slice.scope().isAlive()).isFalse();
        assertThat(ram.scope().isAlive()).isFalse();
    }

    @Test
    void withTheIoSessionTurnedOffSlicesShareRamsSession() {
        String old = System.getProperty("modemu.ram.io-session");
        System.setProperty("modemu.ram.io-session", "false");
        try (Machine m = machine()) {
            RamBlock block = m.memory().blocks().getFirst();
            assertThat(block.ioSegment()).isSameAs(block.segment());
            assertThat(m.memory().slice(Machine.RAM_BASE, 16).scope()).isEqualTo(block.segment().scope());
        } finally {
            if (old == null) {
                System.clearProperty("modemu.ram.io-session");
            } else {
                System.setProperty("modemu.ram.io-session", old);
            }
        }
    }

    @Test
    void aRamBlockRefusesAnIoViewOfOtherMemoryNamingTheBlock() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = arena.allocate(8192, 4096);
            MemorySegment other = arena.allocate(8192, 4096);
            assertThatThrownBy(() -> new RamBlock("ram0", Machine.RAM_BASE, ram, other, null, true))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("RAM block 'ram0': the I/O view (0x" + Long.toHexString(other.address()) + ", 8192 bytes)")
                    .hasMessageEndingWith("is not the block's memory (0x" + Long.toHexString(ram.address()) + ", 8192 bytes)");
            assertThatThrownBy(() -> new RamBlock("ram0", Machine.RAM_BASE, ram, ram.asSlice(0, 4096), null, true))
                    .isInstanceOf(IllegalArgumentException.class);
        }
    }
}
