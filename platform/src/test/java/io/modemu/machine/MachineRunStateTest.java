package io.modemu.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.aio.DeterministicScheduler;
import io.modemu.block.MemoryBlockNode;
import io.modemu.guest.GuestTask;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The VM change-state chain: order, asynchrony, failures and the run-state table, under a seeded scheduler. */
class MachineRunStateTest {
    DeterministicScheduler sched;
    Machine m;
    final List<String> log = Collections.synchronizedList(new ArrayList<>());

    @BeforeEach
    void setUp() {
        sched = new DeterministicScheduler(7);
        m = TestMachines.machine(sched, new MemoryBlockNode(1 << 16, false, 0), 1);
    }

    @AfterEach
    void tearDown() {
        m.close();
    }

    /** A handler that logs and completes after {@code delayNanos} on the main loop (asynchronously). */
    private VmStateHandler handler(String name, long delayNanos, boolean failStop, boolean failStart) {
        return new VmStateHandler() {
            @Override
            public CompletionStage<Void> stop(RunState s) {
                m.mainLoop().assertInThread();
                log.add("stop " + name);
                return later(delayNanos, failStop ? "stop " + name + " broke" : null);
            }

            @Override
            public CompletionStage<Void> start() {
                m.mainLoop().assertInThread();
                log.add("start " + name);
                return later(delayNanos, failStart ? "start " + name + " broke" : null);
            }
        };
    }

    private CompletionStage<Void> later(long delay, String error) {
        CompletableFuture<Void> f = new CompletableFuture<>();
        m.mainLoop().schedule(delay, () -> {
            if (error != null) {
                f.completeExceptionally(new IllegalStateException(error));
            } else {
                f.complete(null);
            }
        });
        return f;
    }

    private void register(String name, int prio) {
        m.onMainLoop(() -> m.addVmStateHandler(name, prio, handler(name, 1_000_000, false, false)));
    }

    @Test
    void stopRunsHandlersInDescendingPriorityAndStartInAscendingTiesInRegistrationOrder() {
        register("bus", 0);
        register("disk-a", 10);
        register("disk-b", 10);
        register("net", 5);
        sched.await(m.vmStart());
        assertThat(log).containsExactly("start bus", "start net", "start disk-a", "start disk-b");
        log.clear();
        sched.await(m.vmStop(RunState.PAUSED));
        assertThat(log).containsExactly("stop disk-a", "stop disk-b", "stop net", "stop bus");
        assertThat(m.runState()).isEqualTo(RunState.PAUSED);
    }

    @Test
    void eachHandlerStartsOnlyAfterThePreviousOneCompletedAndTheMainLoopKeepsServing() {
        m.onMainLoop(() -> m.addVmStateHandler("slow", 1, handler("slow", 50_000_000, false, false)));
        m.onMainLoop(() -> m.addVmStateHandler("fast", 0, handler("fast", 0, false, false)));
        sched.await(m.vmStart());
        log.clear();
        CompletableFuture<Void> stop = m.vmStop(RunState.PAUSED);
        sched.runUntil(() -> !log.isEmpty(), 10_000);
        // while "slow" is pending, the main loop still runs other work
        CompletableFuture<String> other = m.mainLoop().submit(() -> "served");
        sched.runUntil(other::isDone, 10_000);
        assertThat(other.join()).isEqualTo("served");
        assertThat(stop).isNotDone();
        assertThat(log).containsExactly("stop slow");
        sched.await(stop);
        assertThat(log).containsExactly("stop slow", "stop fast");
    }

    @Test
    void aFailingStopHandlerIsNamedAndTheStopIsRolledBack() {
        register("a", 2);
        m.onMainLoop(() -> m.addVmStateHandler("broken", 1, handler("broken", 1000, true, false)));
        register("c", 0);
        sched.await(m.vmStart());
        log.clear();
        CompletableFuture<Void> stop = m.vmStop(RunState.FINISH_MIGRATE);
        assertThatThrownBy(() -> sched.await(stop)).isInstanceOf(CompletionException.class)
                .cause().isInstanceOf(VmStateHandlerException.class)
                .hasMessage("VM state handler 'broken' failed to stop: stop broken broke");
        // "a" had stopped, so it is started again; "c" never stopped
        assertThat(log).containsExactly("stop a", "stop broken", "start a");
        assertThat(m.runState()).isEqualTo(RunState.RUNNING);
        sched.runUntil(() -> m.vcpus().getFirst().steps() > 0, 100_000);
    }

    @Test
    void aFailingStartHandlerLeavesTheMachineInItsStoppedState() {
        register("a", 0);
        m.onMainLoop(() -> m.addVmStateHandler("broken", 1, handler("broken", 1000, false, true)));
        register("c", 2);
        CompletableFuture<Void> start = m.vmStart();
        assertThatThrownBy(() -> sched.await(start)).cause().hasMessage("VM state handler 'broken' failed to start: start broken broke");
        assertThat(log).containsExactly("start a", "start broken", "stop a");
        assertThat(m.runState()).isEqualTo(RunState.PRELAUNCH);
    }

    @Test
    void aHandlerThatThrowsInsteadOfReturningAStageIsReportedByName() {
        m.onMainLoop(() -> m.addVmStateHandler("thrower", 0, new VmStateHandler() {
            @Override
            public CompletionStage<Void> stop(RunState s) {
                throw new IllegalArgumentException("bad day");
            }

            @Override
            public CompletionStage<Void> start() {
                return CompletableFuture.completedFuture(null);
            }
        }));
        sched.await(m.vmStart());
        assertThatThrownBy(() -> sched.await(m.vmStop(RunState.PAUSED))).cause()
                .hasMessage("VM state handler 'thrower' failed to stop: bad day");
        assertThat(m.runState()).isEqualTo(RunState.RUNNING);
    }

    @Test
    void anIllegalTransitionNamesBothStates() {
        sched.await(m.vmStart());
        sched.await(m.vmStop(RunState.SHUTDOWN));
        assertThatThrownBy(() -> sched.await(m.vmStopForceState(RunState.POSTMIGRATE))).cause()
                .isInstanceOf(IllegalRunStateTransitionException.class)
                .hasMessage("invalid run state transition: 'shutdown' -> 'postmigrate'");
        assertThat(m.runState()).isEqualTo(RunState.SHUTDOWN);
    }

    @Test
    void changesRequestedTogetherRunOneAfterAnother() {
        register("h", 0);
        sched.await(m.vmStart());
        log.clear();
        CompletableFuture<Void> s1 = m.vmStop(RunState.PAUSED);
        CompletableFuture<Void> s2 = m.vmStart();
        CompletableFuture<Void> s3 = m.vmStop(RunState.FINISH_MIGRATE);
        sched.await(CompletableFuture.allOf(s1, s2, s3));
        assertThat(log).containsExactly("stop h", "start h", "stop h");
        assertThat(m.runState()).isEqualTo(RunState.FINISH_MIGRATE);
    }

    @Test
    void vcpusPauseAtASafePointBeforeStopHandlersAndResumeAfterStartHandlers() {
        int[] stepsAtHandler = new int[2];
        class Counter implements GuestTask {
            volatile int inStep;
            @Override
            public long step() {
                inStep++;
                assertThat(inStep).isEqualTo(1);
                log.add("step");
                inStep--;
                return CONTINUE;
            }
        }
        Vcpu cpu = m.vcpus().getFirst();
        m.onMainLoop(() -> {
            cpu.load(new Counter());
            return m.addVmStateHandler("probe", 0, new VmStateHandler() {
                @Override
                public CompletionStage<Void> stop(RunState s) {
                    stepsAtHandler[0] = (int) cpu.steps();
                    return m.mainLoop().submit(() -> null).thenCompose(v -> CompletableFuture.completedFuture(null));
                }

                @Override
                public CompletionStage<Void> start() {
                    stepsAtHandler[1] = (int) cpu.steps();
                    return CompletableFuture.completedFuture(null);
                }
            });
        });
        sched.await(m.vmStart());
        sched.runUntil(() -> cpu.steps() > 50, 100_000);
        CompletableFuture<Void> stop = m.vmStop(RunState.PAUSED);
        sched.await(stop);
        long afterStop = cpu.steps();
        assertThat(stepsAtHandler[0]).as("no step after the pause, before the handler ran").isEqualTo((int) afterStop);
        sched.runUntil(() -> false, 10_000);
        assertThat(cpu.steps()).as("a paused vCPU does not step").isEqualTo(afterStop);
        sched.await(m.vmStart());
        assertThat(stepsAtHandler[1]).as("start handlers run before the vCPU resumes").isEqualTo((int) afterStop);
        sched.runUntil(() -> cpu.steps() > afterStop + 10, 100_000);
        assertThat(cpu.steps()).isGreaterThan(afterStop);
    }

    @Test
    void stoppingAVmThatDoesNotRunRunsNoHandlerAndOnlyForceStateChangesTheState() {
        register("h", 0);
        sched.await(m.vmStop(RunState.PAUSED));
        assertThat(m.runState()).isEqualTo(RunState.PRELAUNCH);
        sched.await(m.vmStopForceState(RunState.FINISH_MIGRATE));
        assertThat(m.runState()).isEqualTo(RunState.FINISH_MIGRATE);
        assertThat(log).isEmpty();
        assertThatThrownBy(() -> sched.await(m.vmStopForceState(RunState.IO_ERROR))).cause()
                .hasMessage("invalid run state transition: 'finish-migrate' -> 'io-error'");
    }

    @Test
    void aGuestProgramThatThrowsPanicsTheGuestInsteadOfKillingTheVcpuThread() {
        Vcpu cpu = m.vcpus().getFirst();
        m.onMainLoop(() -> {
            cpu.load(() -> {
                throw new IllegalStateException("guest bug");
            });
            return null;
        });
        sched.await(m.vmStart());
        sched.runUntil(() -> m.runState() == RunState.GUEST_PANICKED, 100_000);
        assertThat(m.runState()).isEqualTo(RunState.GUEST_PANICKED);
        assertThat(cpu.context().uncaughtErrors()).isZero();
    }

    /**
     * QEMU's cpu throttle: a throttled vCPU runs for a 10 ms timeslice, then sleeps timeslice x pct / (100 - pct)
     * in one piece, so that the intervals in which the guest dirties nothing are long (auto-converge relies on
     * them); at 99% it runs 10 ms of every second.
     */
    @Test
    void aThrottledVcpuRunsTimeslicesAndSleepsInOnePieceAsQemusThrottle() {
        List<Long> at = Collections.synchronizedList(new ArrayList<>());
        Vcpu cpu = m.vcpus().getFirst();
        m.onMainLoop(() -> {
            cpu.load(() -> {
                at.add(sched.now());
                return GuestTask.CONTINUE;
            });
            return null;
        });
        sched.await(m.vmStart());
        for (int pct : new int[] {50, 99}) {
            cpu.setThrottle(pct);
            sched.runUntil(() -> false, 50_000);
            at.clear();
            long from = sched.now();
            long window = pct == 99 ? 10_000_000_000L : 2_000_000_000L;
            sched.runUntil(() -> sched.now() - from > window, 50_000_000);
            long sleep = Vcpu.THROTTLE_TIMESLICE_NANOS * pct / (100 - pct);
            List<Long> steps = List.copyOf(at);
            long running = 0;
            long burstStart = steps.getFirst();
            int sleeps = 0;
            for (int i = 1; i < steps.size(); i++) {
                long gap = steps.get(i) - steps.get(i - 1);
                if (gap >= sleep) {
                    sleeps++;
                    running += steps.get(i - 1) - burstStart;
                    assertThat(steps.get(i - 1) - burstStart).as("a timeslice at %d%%", pct)
                            .isLessThanOrEqualTo(Vcpu.THROTTLE_TIMESLICE_NANOS + 10_000);
                    burstStart = steps.get(i);
                } else {
                    assertThat(gap).as("between two steps of a timeslice at %d%%", pct).isLessThan(1_000_000);
                }
            }
            running += steps.getLast() - burstStart;
            long span = steps.getLast() - steps.getFirst();
            assertThat(sleeps).as("sleeps at %d%%", pct).isGreaterThanOrEqualTo(pct == 99 ? 8 : 90);
            assertThat((double) running / span).as("share of time running at %d%%", pct)
                    .isBetween((100 - pct) / 100.0 * 0.8, (100 - pct) / 100.0 * 1.2);
        }
        cpu.setThrottle(0);
        sched.runUntil(() -> false, 50_000);
        at.clear();
        long from = sched.now();
        sched.runUntil(() -> sched.now() - from > 100_000_000L, 50_000_000);
        for (int i = 1; i < at.size(); i++) {
            assertThat(at.get(i) - at.get(i - 1)).as("unthrottled").isLessThan(1_000_000);
        }
    }
}
