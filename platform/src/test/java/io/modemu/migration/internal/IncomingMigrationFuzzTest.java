package io.modemu.migration.internal;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing (Jazzer) of the two ends of a migration that read what a peer sent: the
 * destination's incoming stream and the source's return path. {@code ./mvnw verify} replays the inputs
 * checked in under {@code IncomingMigrationFuzzTestInputs/<method>/} (real recorded streams, and every
 * input that ever found a bug); {@code JAZZER_FUZZ=1} fuzzes (docs/fuzzing.md). The properties are
 * {@link MigrationFuzzing}'s.
 */
class IncomingMigrationFuzzTest {
    /** A fuzz input: a mode byte (bit 0: repair the checksums first), then length-prefixed channels, main first. */
    @FuzzTest(maxDuration = "5m")
    void incomingStream(byte[] input) {
        MigrationFuzzing.incoming(input);
    }

    /** A fuzz input: everything the destination answers the source. */
    @FuzzTest(maxDuration = "5m")
    void returnPath(byte[] replies) {
        MigrationFuzzing.returnPath(replies);
    }
}
