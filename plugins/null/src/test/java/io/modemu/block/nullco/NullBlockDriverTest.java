package io.modemu.block.nullco;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.aio.DeterministicScheduler;
import io.modemu.block.BlockBackend;
import io.modemu.machine.Machine;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

class NullBlockDriverTest {
    private static Machine machine(DeterministicScheduler s) {
        return Machine.builder().loopDriver(s).ram(1 << 20).vcpus(0).contributions(Contributions.builder().add(new NullBlockDriver()).build()).build();
    }

    @Test
    void readsZerosDiscardsWritesAndHasTheSizeAsked() {
        DeterministicScheduler s = new DeterministicScheduler(5);
        try (Machine m = machine(s)) {
            BlockBackend be = m.addDrive("n0", Options.parse("-drive", "driver=null-co,size=64M", null));
            assertThat(be.size()).isEqualTo(64L << 20);
            MemorySegment ram = m.memory().slice(Machine.RAM_BASE, 4096);
            ram.fill((byte) 0x77);
            CompletableFuture<Integer> w = new CompletableFuture<>();
            m.mainLoop().execute(() -> be.write(0, ram, w::complete));
            assertThat(s.await(w)).isZero();
            CompletableFuture<Integer> r = new CompletableFuture<>();
            m.mainLoop().execute(() -> be.read(0, ram, r::complete));
            assertThat(s.await(r)).isZero();
            assertThat(ram.mismatch(MemorySegment.ofArray(new byte[4096]))).isEqualTo(-1);
        }
    }

    @Test
    void latencyDelaysCompletionOnTheRequestingContextsClock() {
        DeterministicScheduler s = new DeterministicScheduler(6, 0);
        try (Machine m = machine(s)) {
            BlockBackend be = m.addDrive("n0", Options.parse("-drive", "driver=null,latency-ns=2ms", null));
            long[] doneAt = new long[1];
            CompletableFuture<Integer> r = new CompletableFuture<>();
            long start = s.now();
            m.mainLoop().execute(() -> be.read(0, m.memory().slice(Machine.RAM_BASE, 512), st -> {
                doneAt[0] = s.now();
                r.complete(st);
            }));
            s.await(r);
            assertThat(doneAt[0] - start).isEqualTo(2_000_000);
        }
    }

    @Test
    void aSizeThatIsNotASizeIsNamed() {
        try (Machine m = machine(new DeterministicScheduler(1))) {
            assertThatThrownBy(() -> m.addDrive("n0", Options.parse("-drive", "driver=null-co,size=big", null)))
                    .hasMessage("-drive: option 'size': 'big' is not a size (expected a number with an optional suffix K, M, G or T)");
        }
    }
}
