package io.modemu.migration.internal;

import static org.assertj.core.api.Assertions.assertThatCode;

import org.junit.jupiter.api.Test;

class EngineWarmupTest {
    @Test
    void theWarmUpStreamIsWrittenAndReadBackByTheEngine() {
        // fails when the writer and the reader no longer agree on the stream (the warm-up would then stop early, silently)
        assertThatCode(EngineWarmup::roundTrip).doesNotThrowAnyException();
    }

    @Test
    void theRunStateWarmUpStartsStopsAndClosesAMachineOfItsOwn() {
        // fails if a run-state change it makes is refused (the warm-up would then stop early, silently)
        assertThatCode(EngineWarmup::runStates).doesNotThrowAnyException();
    }
}
