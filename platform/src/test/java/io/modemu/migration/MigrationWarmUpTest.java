package io.modemu.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.migration.internal.EngineWarmup;
import io.modemu.plugin.Contributions;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The engine's transfer warm-up: a migration of machines of its own, over a transport, inside the process. */
class MigrationWarmUpTest {
    @Test
    @Timeout(60)
    void theWarmUpMigrationKeepsIteratingUntilItsBytesWentThroughThenCompletes() throws Exception {
        PipeTransport pipe = new PipeTransport(false);
        long moved = EngineWarmup.transfer(Contributions.builder().add(pipe).build(), pipe, "warm-up-stream", "", EngineWarmup.JIT_BYTES, () -> false);
        // fails if the migration switched over early (the page and record code would not reach tier 4) or failed
        assertThat(moved).isGreaterThanOrEqualTo(EngineWarmup.JIT_BYTES);
    }

    @Test
    @Timeout(60)
    void theWarmUpOverAOneSidedTransportCompletesToo() throws Exception {
        // it asks for a destination whose RAM is a shared file mapping, and fails the migration otherwise
        PipeTransport pipe = new PipeTransport(true, true);
        long moved = EngineWarmup.transfer(Contributions.builder().add(pipe).build(), pipe, "warm-up-one-sided", "", EngineWarmup.JIT_BYTES, () -> false);
        assertThat(moved).isGreaterThanOrEqualTo(EngineWarmup.JIT_BYTES);
    }

    /** A stop that says no {@code asks} times, then yes, remembering when it first said yes. */
    private static final class StopAfter implements BooleanSupplier {
        private final int asks;
        private final AtomicInteger asked = new AtomicInteger();
        private final AtomicLong stoppedAt = new AtomicLong();

        StopAfter(int asks) {
            this.asks = asks;
        }

        @Override
        public boolean getAsBoolean() {
            if (asked.incrementAndGet() <= asks) {
                return false;
            }
            stoppedAt.compareAndSet(0, System.nanoTime());
            return true;
        }

        /** How long ago it first said yes. */
        Duration sinceStop() {
            return Duration.ofNanos(System.nanoTime() - stoppedAt.get());
        }
    }

    @Test
    @Timeout(60)
    void aStopCancelsTheWarmUpMigrationAtOnce() throws Exception {
        PipeTransport pipe = new PipeTransport(false);
        // stop once the migration has run a few milliseconds (the warm-up asks about every millisecond); on a
        // loaded host that can come before the source connected, and its destination must not be waited for
        StopAfter stop = new StopAfter(5);
        long moved = EngineWarmup.transfer(Contributions.builder().add(pipe).build(), pipe, "warm-up-stopped", "", EngineWarmup.JIT_BYTES, stop);
        assertThat(moved).isLessThan(EngineWarmup.JIT_BYTES);
        // the cancelled migration and its destination end in milliseconds; before, a destination nobody connected
        // to was waited for 10 s
        assertThat(stop.sinceStop()).isLessThan(Duration.ofSeconds(3));
    }

    @Test
    @Timeout(60)
    void aStopBeforeTheSourceConnectedDoesNotWaitForItsDestination() throws Exception {
        // the source's transport takes a while to connect, and the stop comes meanwhile
        PipeTransport pipe = new PipeTransport(false).connectDelay(Duration.ofSeconds(2));
        StopAfter stop = new StopAfter(2);
        long moved = EngineWarmup.transfer(Contributions.builder().add(pipe).build(), pipe, "warm-up-stopped-early", "", EngineWarmup.JIT_BYTES, stop);
        assertThat(moved).isZero();
        assertThat(stop.sinceStop()).isLessThan(Duration.ofSeconds(3));
    }
}
