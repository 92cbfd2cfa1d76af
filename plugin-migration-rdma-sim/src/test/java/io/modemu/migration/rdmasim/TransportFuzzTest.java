package io.modemu.migration.rdmasim;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing (Jazzer) of the transport's messages between a source and a destination.
 * {@code ./mvnw verify} replays the inputs under {@code TransportFuzzTestInputs/transport/}
 * ({@link TransportSeeds}, and every input that ever found a bug); {@code JAZZER_FUZZ=1} fuzzes
 * (docs/fuzzing.md). The input and the properties are {@link TransportFuzzing}'s.
 */
class TransportFuzzTest {
    @FuzzTest(maxDuration = "5m")
    void transport(byte[] input) {
        TransportFuzzing.run(input);
    }
}
