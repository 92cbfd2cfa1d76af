package io.modemu.migration.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

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

    @Test
    void ramFilesOfDeadProcessesAreSweptAndLiveOnesKept(@TempDir Path dir) throws Exception {
        Process dead = new ProcessBuilder("true").start();
        dead.waitFor();
        Path stale = Files.createFile(dir.resolve("modemu-migration-warm-up-" + dead.pid() + "-123.ram"));
        Path mine = Files.createFile(dir.resolve("modemu-migration-warm-up-" + ProcessHandle.current().pid() + "-456.ram"));
        Path live = Files.createFile(dir.resolve("modemu-migration-warm-up-1-789.ram"));
        Path other = Files.createFile(dir.resolve("modemu-migration-warm-up-notapid-1.ram"));
        EngineWarmup.sweepStaleRamFiles(dir);
        assertThat(stale).doesNotExist();
        assertThat(mine).exists();
        assertThat(live).as("pid 1 is alive").exists();
        assertThat(other).exists();
    }
}
