package io.modemu.virtio.blk;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The checked-in seed programs of {@link VirtioBlkFuzzTest} are the well-formed ones of
 * {@link VirtioBlkSeeds} (rewrite them with {@code -Dfuzz.recordSeeds=true}), and each is served as a
 * driver expects: every request it makes completes with a status, with no guest error.
 */
class VirtioBlkSeedsTest {
    private static final Path DIR = Path.of("src/test/resources/io/modemu/virtio/blk/VirtioBlkFuzzTestInputs/guestProgram");

    @Test
    void theSeedProgramsAreCheckedInAndServedWithoutAGuestError() throws IOException {
        Map<String, byte[]> seeds = VirtioBlkSeeds.all();
        if (Boolean.getBoolean("fuzz.recordSeeds")) {
            Files.createDirectories(DIR);
            for (var e : seeds.entrySet()) {
                Files.write(DIR.resolve(e.getKey()), e.getValue());
            }
        }
        for (var e : seeds.entrySet()) {
            assertThat(Files.readAllBytes(DIR.resolve(e.getKey()))).as("checked-in seed %s", e.getKey()).isEqualTo(e.getValue());
            VirtioBlkFuzzing.Outcome o = VirtioBlkFuzzing.run(e.getValue());
            assertThat(o.needsReset()).as("%s: the device asked for a reset", e.getKey()).isFalse();
            assertThat(o.completed()).as("%s: requests completed", e.getKey()).isPositive();
        }
    }
}
