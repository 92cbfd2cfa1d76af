package io.modemu.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.migration.internal.EngineWarmup;
import io.modemu.plugin.Contributions;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
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

    @Test
    @Timeout(60)
    void aStopCancelsTheWarmUpMigrationAtOnce() throws Exception {
        PipeTransport pipe = new PipeTransport(false);
        AtomicInteger asked = new AtomicInteger();
        AtomicLong stoppedAt = new AtomicLong();
        // stop once the migration has run a few milliseconds (the warm-up asks about every millisecond); on a
        // loaded host that can come before the source connected, and its destination must not be waited for
        long moved = EngineWarmup.transfer(Contributions.builder().add(pipe).build(), pipe, "warm-up-stopped", "", EngineWarmup.JIT_BYTES, () -> {
            if (asked.incrementAndGet() <= 5) {
                return false;
            }
            stoppedAt.compareAndSet(0, System.nanoTime());
            return true;
        });
        assertThat(moved).isLessThan(EngineWarmup.JIT_BYTES);
        // the cancelled migration and its destination end in milliseconds; before, a destination nobody connected
        // to was waited for 10 s
        assertThat(Duration.ofNanos(System.nanoTime() - stoppedAt.get())).isLessThan(Duration.ofSeconds(3));
    }

    @Test
    @Timeout(60)
    void aStopBeforeTheSourceConnectedDoesNotWaitForItsDestination() throws Exception {
        // the source's transport takes a while to connect, and the stop comes meanwhile
        PipeTransport pipe = new PipeTransport(false).connectDelay(Duration.ofMillis(300));
        AtomicInteger asked = new AtomicInteger();
        AtomicLong stoppedAt = new AtomicLong();
        long moved = EngineWarmup.transfer(Contributions.builder().add(pipe).build(), pipe, "warm-up-stopped-early", "", EngineWarmup.JIT_BYTES, () -> {
            if (asked.incrementAndGet() <= 2) {
                return false;
            }
            stoppedAt.compareAndSet(0, System.nanoTime());
            return true;
        });
        assertThat(moved).isZero();
        assertThat(Duration.ofNanos(System.nanoTime() - stoppedAt.get())).isLessThan(Duration.ofSeconds(3));
    }
}
