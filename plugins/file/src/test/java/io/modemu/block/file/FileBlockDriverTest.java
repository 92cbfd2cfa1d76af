package io.modemu.block.file;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import io.modemu.block.BlockBackend;
import io.modemu.block.Errno;
import io.modemu.machine.Machine;
import io.modemu.options.ConfigurationException;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The file driver, driven through a machine's block backend as a device would. */
class FileBlockDriverTest {
    @TempDir
    Path tmp;

    private Machine machine() {
        return Machine.builder().ram(1 << 20).vcpus(0).contributions(Contributions.builder().add(new FileBlockDriver()).build()).build();
    }

    private static int io(Machine m, BlockBackend be, java.util.function.Consumer<io.modemu.block.BlockCompletion> r) {
        CompletableFuture<Integer> f = new CompletableFuture<>();
        m.mainLoop().execute(() -> r.accept(f::complete));
        return f.join();
    }

    @ParameterizedTest
    @ValueSource(strings = {"threads", "inline"})
    void readsAndWritesGoBetweenGuestRamAndTheImage(String aio) throws IOException {
        Path img = tmp.resolve("disk.img");
        byte[] content = new byte[64 << 10];
        for (int i = 0; i < content.length; i++) {
            content[i] = (byte) (i * 7);
        }
        Files.write(img, content);
        try (Machine m = machine()) {
            BlockBackend be = m.addDrive("d0", Options.parse("-drive", "driver=file,filename=" + img + ",aio=" + aio, null));
            assertThat(be.size()).isEqualTo(64 << 10);
            MemorySegment ram = m.memory().slice(Machine.RAM_BASE + 8192, 4096);
            assertThat(io(m, be, cb -> be.read(4096, ram, cb))).isZero();
            assertThat(ram.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)).isEqualTo(java.util.Arrays.copyOfRange(content, 4096, 8192));
            ram.fill((byte) 0x11);
            assertThat(io(m, be, cb -> be.write(0, ram, cb))).isZero();
            assertThat(io(m, be, cb -> be.writeZeroes(8192, 8192, cb))).isZero();
            assertThat(io(m, be, be::flush)).isZero();
            byte[] now = Files.readAllBytes(img);
            assertThat(now[0]).isEqualTo((byte) 0x11);
            assertThat(now[4095]).isEqualTo((byte) 0x11);
            assertThat(now[8192]).isZero();
            assertThat(now[16383]).isZero();
            assertThat(now[16384]).isEqualTo(content[16384]);
        }
    }

    @Test
    void aReadOnlyDriveRefusesWrites() throws IOException {
        Path img = tmp.resolve("ro.img");
        Files.write(img, new byte[4096]);
        try (Machine m = machine()) {
            BlockBackend be = m.addDrive("d0", Options.parse("-drive", "driver=file,filename=" + img + ",read-only=on", null));
            assertThat(be.isReadOnly()).isTrue();
            MemorySegment ram = m.memory().slice(Machine.RAM_BASE, 512);
            assertThat(io(m, be, cb -> be.write(0, ram, cb))).isEqualTo(-Errno.EPERM);
        }
    }

    @Test
    void aMissingImageIsAOneLineErrorAndNothingIsLeftBehind() {
        try (Machine m = machine()) {
            assertThatThrownBy(() -> m.addDrive("d0", Options.parse("-drive", "driver=file,filename=" + tmp.resolve("nope.img"), null)))
                    .isInstanceOf(ConfigurationException.class)
                    .hasMessage("-drive: cannot open '" + tmp.resolve("nope.img") + "': no such file");
            assertThat(m.blockBackends()).isEmpty();
        }
    }

    @Test
    void aDirectoryIsNotAnImage() {
        try (Machine m = machine()) {
            assertThatThrownBy(() -> m.addDrive("d0", Options.parse("-drive", "driver=file,filename=" + tmp, null)))
                    .hasMessage("-drive: '" + tmp + "' is a directory, not a disk image");
        }
    }

    @Test
    void anUnreadableImageIsAOneLineError() throws IOException {
        Path img = tmp.resolve("secret.img");
        Files.write(img, new byte[512]);
        Files.setPosixFilePermissions(img, PosixFilePermissions.fromString("---------"));
        assumeFalse(Files.isReadable(img), "running as root: file permissions do not apply");
        try (Machine m = machine()) {
            assertThatThrownBy(() -> m.addDrive("d0", Options.parse("-drive", "driver=file,filename=" + img, null)))
                    .hasMessageContaining("cannot open '" + img + "': permission denied");
        }
    }

    @Test
    void unknownOptionsAndUnknownDriversAreNamed() throws IOException {
        Path img = tmp.resolve("x.img");
        Files.write(img, new byte[512]);
        try (Machine m = machine()) {
            assertThatThrownBy(() -> m.addDrive("d0", Options.parse("-drive", "driver=file,filename=" + img + ",cache-mode=fast", null)))
                    .hasMessage("-drive: unknown option 'cache-mode'");
            assertThatThrownBy(() -> m.addDrive("d0", Options.parse("-drive", "driver=qcow2,filename=" + img, null)))
                    .hasMessage("no block driver 'qcow2': no loaded plugin provides it (available: file, raw)");
            assertThatThrownBy(() -> m.addDrive("d0", Options.parse("-drive", "driver=file,filename=" + img + ",aio=native", null)))
                    .hasMessage("-drive: option 'aio' must be one of threads, inline, not 'native'");
            assertThat(m.blockBackends()).isEmpty();
        }
    }
}
