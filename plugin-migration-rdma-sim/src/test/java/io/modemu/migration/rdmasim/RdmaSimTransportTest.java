package io.modemu.migration.rdmasim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.migration.ChannelSettings;
import io.modemu.migration.MigrationChannel;
import io.modemu.migration.MigrationListener;
import io.modemu.migration.MigrationTransport;
import io.modemu.migration.RemoteRamTarget;
import io.modemu.migration.RemoteRamWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The transport through the engine's SPI: streams in ByteBuffers, and the one-sided RAM roles. */
class RdmaSimTransportTest {
    private static final Duration WAIT = Duration.ofSeconds(30);
    private Path dir;

    @BeforeEach
    void setUp() throws IOException {
        dir = Files.createTempDirectory(Path.of("/dev/shm"), "rdmasim-spi-");
    }

    @AfterEach
    void tearDown() throws IOException {
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.deleteIfExists(f);
            }
        }
        Files.deleteIfExists(dir);
    }

    @Test
    void theModuleProvidesTheTransportForItsScheme() {
        // what the plugin host's ServiceLoader finds in the plugin's layer
        assertThat(RdmaSimTransport.class.getModule().getDescriptor().provides())
                .anySatisfy(p -> {
                    assertThat(p.service()).isEqualTo(MigrationTransport.class.getName());
                    assertThat(p.providers()).containsExactly(RdmaSimTransport.class.getName());
                });
        assertThat(new RdmaSimTransport().scheme()).isEqualTo("rdma-sim");
    }

    @Test
    void streamsFlowAndEachEndHasItsRamRole() throws Exception {
        RdmaSimTransport t = new RdmaSimTransport();
        ChannelSettings s = new ChannelSettings(WAIT, WAIT);
        try (MigrationListener l = t.listen("127.0.0.1:0,shm=" + dir, s)) {
            CompletableFuture<MigrationChannel> in = CompletableFuture.supplyAsync(() -> {
                try {
                    return l.accept(WAIT);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            byte[] data = new byte[300_000];
            new Random(5).nextBytes(data);
            try (MigrationChannel out = t.connect(l.address() + ",shm=" + dir, s); MigrationChannel dst = in.join()) {
                assertThat(out.role(RemoteRamWriter.class)).isPresent();
                assertThat(out.role(RemoteRamTarget.class)).isEmpty();
                assertThat(dst.role(RemoteRamTarget.class)).isPresent();
                out.write(ByteBuffer.wrap(data, 0, 1000), ByteBuffer.wrap(data, 1000, data.length - 1000));
                ByteBuffer got = ByteBuffer.allocate(data.length);
                while (got.hasRemaining()) {
                    assertThat(dst.read(got, WAIT)).isPositive();
                }
                assertThat(got.array()).isEqualTo(data);
                out.close();
                assertThat(dst.read(ByteBuffer.allocate(1), WAIT)).isEqualTo(-1);
            }
        }
        assertThatThrownBy(() -> t.connect("127.0.0.1:1,shm=" + dir, new ChannelSettings(Duration.ofSeconds(5), WAIT)))
                .isInstanceOf(IOException.class).hasMessageContaining("cannot reach 127.0.0.1:1");
    }
}
