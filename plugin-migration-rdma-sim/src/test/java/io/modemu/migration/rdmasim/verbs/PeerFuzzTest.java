package io.modemu.migration.rdmasim.verbs;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing (Jazzer) of what a peer sends over the fabric: the handshake, the frames on
 * the connection's socket, the peer's shared table. {@code ./mvnw verify} replays the inputs under
 * {@code PeerFuzzTestInputs/peer/} ({@link PeerSeeds}, and every input that ever found a bug);
 * {@code JAZZER_FUZZ=1} fuzzes (docs/fuzzing.md). The input and the properties are {@link PeerFuzzing}'s.
 */
class PeerFuzzTest {
    @FuzzTest(maxDuration = "5m")
    void peer(byte[] input) {
        PeerFuzzing.run(input);
    }
}
