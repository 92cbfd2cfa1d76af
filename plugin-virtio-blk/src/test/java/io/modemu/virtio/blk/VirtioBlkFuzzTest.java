package io.modemu.virtio.blk;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing (Jazzer) of what a guest controls: registers, descriptor tables, rings,
 * request headers, notifications, with VM stops and disk errors in between. {@code ./mvnw verify}
 * replays the inputs under {@code VirtioBlkFuzzTestInputs/guestProgram/} (well-formed programs, and
 * every input that ever found a bug); {@code JAZZER_FUZZ=1} fuzzes (docs/fuzzing.md). The input is a
 * {@link GuestProgram}; the properties are {@link VirtioBlkFuzzing}'s.
 */
class VirtioBlkFuzzTest {
    @FuzzTest(maxDuration = "5m")
    void guestProgram(byte[] program) {
        VirtioBlkFuzzing.run(program);
    }
}
