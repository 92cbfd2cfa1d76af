package io.modemu.migration.rdmasim;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The checked-in seeds of {@link TransportFuzzTest} are {@link TransportSeeds}', and each reaches what it is for. */
class TransportSeedsTest {
    private static final Path DIR = Path.of("src/test/resources/io/modemu/migration/rdmasim/TransportFuzzTestInputs/transport");

    @Test
    void theSeedsAreCheckedInAndReachWhatTheyAreFor() throws IOException {
        Map<String, byte[]> seeds = TransportSeeds.all();
        if (Boolean.getBoolean("fuzz.recordSeeds")) {
            TransportSeeds.record(DIR);
        }
        for (var e : seeds.entrySet()) {
            assertThat(Files.readAllBytes(DIR.resolve(e.getKey()))).as("checked-in seed %s", e.getKey()).isEqualTo(e.getValue());
        }
        for (String clean : new String[] {"stream-and-ram-writes", "stream-and-ram-writes-pin-all"}) {
            TransportFuzzing.Outcome o = TransportFuzzing.run(seeds.get(clean));
            assertThat(o.readFailure()).as(clean).isNull();
            assertThat(o.sourceFailure()).as(clean).isNull();
            assertThat(o.read()).as(clean).hasSize(12 + (clean.endsWith("pin-all") ? 0 : 1500));
        }
        TransportFuzzing.Outcome empty = TransportFuzzing.run(seeds.get("an-empty-message"));
        assertThat(empty.read()).hasSize(12);
        assertThat(empty.readFailure()).contains("sent an empty transport message");
        TransportFuzzing.Outcome unknown = TransportFuzzing.run(seeds.get("an-unknown-message-type"));
        assertThat(unknown.readFailure()).as("%s", unknown).contains("transport message type 99");
        // the destination refuses chunks beyond its RAM (the harness checks what it exposed); the source, which
        // never asked, fails on the answer (or the source closes first: how the destination's read ends varies)
        TransportFuzzing.run(seeds.get("a-registration-request-for-nothing"));
        // the source fails on it, at its next call or only at its close: the harness checks whichever it is
        TransportFuzzing.run(seeds.get("an-answer-nobody-asked-for"));
        // stream bytes after a goodbye are the peer's error, not more stream
        TransportFuzzing.Outcome late = TransportFuzzing.run(seeds.get("a-goodbye-in-the-middle"));
        assertThat(late.read()).hasSize(12);
        assertThat(late.readFailure()).contains("after its goodbye");
    }
}
