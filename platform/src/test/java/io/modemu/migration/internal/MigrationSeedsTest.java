package io.modemu.migration.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.migration.MigrationStatus;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The seed inputs of {@link IncomingMigrationFuzzTest} are what they claim: real streams of a real
 * source (one without and one with parallel data channels) that a destination takes completely, as
 * recorded and after the fuzz harness's checksum repair, so the fuzzer's mutations start from deep
 * inside a valid migration. With {@code -Dfuzz.recordSeeds=DIR} it records them afresh into DIR (after
 * a change of the stream format: {@code DIR} is
 * {@code platform/src/test/resources/io/modemu/migration/internal/IncomingMigrationFuzzTestInputs}).
 */
class MigrationSeedsTest {
    @Test
    void theSeedStreamsAreCompleteMigrationsWithEveryRecordType() throws IOException {
        String dir = System.getProperty("fuzz.recordSeeds");
        if (dir != null) {
            Path in = Path.of(dir, "incomingStream");
            Files.createDirectories(in);
            Files.write(in.resolve("recorded"), StreamModel.input(StreamModel.MODE_REPAIR, MigrationFuzzing.recordSource(false)));
            Files.write(in.resolve("recorded-multifd"), StreamModel.input(StreamModel.MODE_REPAIR, MigrationFuzzing.recordSource(true)));
        }
        List<byte[]> seeds = MigrationFuzzing.seeds("incomingStream");
        assertThat(seeds).hasSizeGreaterThanOrEqualTo(2);
        boolean multifd = false;
        for (byte[] seed : seeds) {
            List<byte[]> channels = StreamModel.channels(seed);
            if (channels.size() == 1) {
                assertThat(StreamModel.records(channels.getFirst(), Wire.STREAM_HEADER).stream().map(StreamModel.Record::type).distinct())
                        .as("record types of the recorded stream")
                        .contains(Wire.CONFIG, Wire.PAGES, Wire.ZERO, Wire.PASS_END, Wire.RAM_DONE, Wire.DEVICE, Wire.EOF, Wire.COMMIT);
            } else {
                multifd = true;
            }
            for (int mode : new int[] {0, StreamModel.MODE_REPAIR}) {
                byte[] input = StreamModel.input(mode, channels);
                assertThat(MigrationFuzzing.incoming(input).status()).as("seed of %d channel(s), mode %d", channels.size(), mode)
                        .isEqualTo(MigrationStatus.COMPLETED);
            }
        }
        assertThat(multifd).as("a seed with data channels").isTrue();
    }
}
