package io.modemu.aio;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class AioContextTest {
    @Test
    void tasksRunOnTheLoopThreadInOrderAndAssertInThreadChecksIt() throws Exception {
        try (AioContext ctx = new AioContext("io7", new ThreadLoopDriver())) {
            List<Integer> order = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                int n = i;
                ctx.execute(() -> {
                    ctx.assertInThread();
                    order.add(n);
                });
            }
            String thread = ctx.submit(() -> Thread.currentThread().getName()).get(5, TimeUnit.SECONDS);
            assertThat(thread).isEqualTo("modemu-io7");
            assertThat(order).hasSize(100).isSorted();
            assertThatThrownBy(ctx::assertInThread).isInstanceOf(WrongThreadException.class)
                    .hasMessageStartingWith("must run in AioContext 'io7', called from thread '");
        }
    }

    @Test
    void timersFireInDeadlineOrderAndCanBeCancelled() throws Exception {
        try (AioContext ctx = new AioContext("t", new ThreadLoopDriver())) {
            List<String> fired = java.util.Collections.synchronizedList(new ArrayList<>());
            CountDownLatch done = new CountDownLatch(1);
            ctx.schedule(30_000_000, () -> {
                fired.add("late");
                done.countDown();
            });
            ctx.schedule(10_000_000, () -> fired.add("early"));
            TimerHandle cancelled = ctx.schedule(20_000_000, () -> fired.add("cancelled"));
            assertThat(cancelled.cancel()).isTrue();
            assertThat(done.await(5, TimeUnit.SECONDS)).isTrue();
            assertThat(fired).containsExactly("early", "late");
        }
    }

    @Test
    void aLoopThatYieldsWhileItSpinsStillRunsTasksFromOtherThreadsAndTimers() throws Exception {
        // spin long and yield at every empty poll (1), or never (0): the work is served either way
        for (int yieldEvery : new int[] {1, 0, -5}) {
            try (AioContext ctx = new AioContext("y" + Math.max(0, yieldEvery), new ThreadLoopDriver(1_000_000, yieldEvery))) {
                CountDownLatch timer = new CountDownLatch(1);
                ctx.schedule(2_000_000, timer::countDown);
                for (int i = 0; i < 1_000; i++) {
                    int n = i;
                    assertThat(ctx.submit(() -> n).get(5, TimeUnit.SECONDS)).isEqualTo(n);
                }
                assertThat(timer.await(5, TimeUnit.SECONDS)).as("yield every %d: the timer fired", yieldEvery).isTrue();
            }
        }
    }

    @Test
    void eventNotifierSignalsCoalesceAndRunTheHandlerOnTheLoop() {
        DeterministicScheduler s = new DeterministicScheduler(3);
        AioContext ctx = new AioContext("io0", s);
        AtomicInteger runs = new AtomicInteger();
        EventNotifier n = ctx.newEventNotifier("q0", () -> {
            ctx.assertInThread();
            runs.incrementAndGet();
        });
        n.signal();
        n.signal();
        n.signal();
        s.runUntilIdle(1000);
        assertThat(runs.get()).isEqualTo(1);
        n.signal();
        s.runUntilIdle(1000);
        assertThat(runs.get()).isEqualTo(2);
        n.setEnabled(false);
        n.signal();
        s.runUntilIdle(1000);
        assertThat(runs.get()).isEqualTo(2);
    }

    @Test
    void aTaskThatThrowsIsCountedAndTheLoopGoesOn() throws Exception {
        try (AioContext ctx = new AioContext("x", new ThreadLoopDriver())) {
            ctx.execute(() -> {
                throw new IllegalStateException("boom");
            });
            assertThat(ctx.submit(() -> 42).get(5, TimeUnit.SECONDS)).isEqualTo(42);
            assertThat(ctx.uncaughtErrors()).isEqualTo(1);
            assertThat(ctx.firstUncaughtError()).hasMessage("boom");
            CompletableFuture<Object> failed = ctx.submit(() -> {
                throw new IllegalArgumentException("reported to the caller");
            });
            assertThatThrownBy(failed::join).cause().hasMessage("reported to the caller");
            assertThat(ctx.uncaughtErrors()).isEqualTo(1);
        }
    }

    @Test
    void theSameSeedGivesTheSameScheduleAndAnotherSeedADifferentOne() {
        assertThat(trace(42)).isEqualTo(trace(42));
        assertThat(trace(42)).isNotEqualTo(trace(43));
    }

    private static List<String> trace(long seed) {
        DeterministicScheduler s = new DeterministicScheduler(seed);
        List<String> out = new ArrayList<>();
        AioContext[] ctxs = {new AioContext("a", s), new AioContext("b", s), new AioContext("c", s)};
        for (AioContext c : ctxs) {
            for (int i = 0; i < 20; i++) {
                int n = i;
                c.execute(() -> out.add(c.name() + n));
                c.schedule(n * 1_000L, () -> out.add(c.name() + "t" + n + "@" + s.now()));
            }
        }
        s.runUntilIdle(10_000);
        return out;
    }

    @Test
    void awaitUnderTheSchedulerNamesTheSeedWhenTheSystemGoesIdle() {
        DeterministicScheduler s = new DeterministicScheduler(99);
        assertThatThrownBy(() -> s.await(new CompletableFuture<>()))
                .hasMessageContaining("seed 99").hasMessageContaining("went idle");
    }
}
