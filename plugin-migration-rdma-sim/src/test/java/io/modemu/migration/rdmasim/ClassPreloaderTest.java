package io.modemu.migration.rdmasim;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class ClassPreloaderTest {
    @Test
    void theWarmUpConnectionCarriesBytesBothWaysAndLeavesNoFileBehind() throws IOException {
        Path parent = Files.createTempDirectory(Path.of("/dev/shm"), "rdmasim-warm-test-");
        try {
            assertThat(ClassPreloader.warmConnection(parent)).isTrue();
            try (Stream<Path> left = Files.list(parent)) {
                assertThat(left.toList()).isEmpty();
            }
        } finally {
            Files.deleteIfExists(parent);
        }
    }
}
