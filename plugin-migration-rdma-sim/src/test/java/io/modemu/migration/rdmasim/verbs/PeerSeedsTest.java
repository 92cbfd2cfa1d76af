package io.modemu.migration.rdmasim.verbs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The checked-in seeds of {@link PeerFuzzTest} are {@link PeerSeeds}' (rewrite them with
 * {@code -Dfuzz.recordSeeds=true}), and each reaches what it was written for.
 */
class PeerSeedsTest {
    private static final Path DIR = Path.of("src/test/resources/io/modemu/migration/rdmasim/verbs/PeerFuzzTestInputs/peer");

    @Test
    void theSeedsAreCheckedInAndReachWhatTheyAreFor() throws IOException {
        Map<String, byte[]> seeds = PeerSeeds.all();
        if (Boolean.getBoolean("fuzz.recordSeeds")) {
            PeerSeeds.record(DIR);
        }
        for (var e : seeds.entrySet()) {
            assertThat(Files.readAllBytes(DIR.resolve(e.getKey()))).as("checked-in seed %s", e.getKey()).isEqualTo(e.getValue());
        }
        PeerFuzzing.Outcome messages = PeerFuzzing.run(seeds.get("messages-into-receives"));
        assertThat(messages.connected()).isTrue();
        // three messages placed, then one longer than its receive: refused, and the rest flushed
        assertThat(messages.completions()).containsEntry(WcStatus.SUCCESS, 3).containsEntry(WcStatus.LOC_LEN_ERR, 1);
        assertThat(messages.errorReason()).contains("1025 bytes does not fit receive");

        PeerFuzzing.Outcome acks = PeerFuzzing.run(seeds.get("acknowledgements-of-the-victims-requests"));
        assertThat(acks.connected()).isTrue();
        assertThat(acks.completions()).containsKey(WcStatus.SUCCESS);

        PeerFuzzing.Outcome naks = PeerFuzzing.run(seeds.get("naks-and-notices"));
        assertThat(naks.completions()).containsKey(WcStatus.REM_ACCESS_ERR);

        // a receive is posted, yet the message claiming 1 TiB is refused before a byte of it is read
        assertThat(PeerFuzzing.run(seeds.get("lying-lengths")).errorReason()).contains("1099511627776 bytes is longer than the maximum message size");
        assertThat(PeerFuzzing.run(seeds.get("a-lying-table")).connected()).isTrue();
        for (String handshake : new String[] {"a-garbage-connect-request", "a-cut-connect-request", "a-garbage-ready-to-use", "a-garbage-reply"}) {
            assertThat(PeerFuzzing.run(seeds.get(handshake)).connected()).as(handshake).isFalse();
        }
    }
}
