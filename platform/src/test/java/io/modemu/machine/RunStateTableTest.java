package io.modemu.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class RunStateTableTest {
    @Test
    void followsQemusTable() {
        assertThat(RunStateTable.isAllowed(RunState.RUNNING, RunState.FINISH_MIGRATE)).isTrue();
        assertThat(RunStateTable.isAllowed(RunState.FINISH_MIGRATE, RunState.POSTMIGRATE)).isTrue();
        assertThat(RunStateTable.isAllowed(RunState.FINISH_MIGRATE, RunState.RUNNING)).as("a failed migration resumes").isTrue();
        assertThat(RunStateTable.isAllowed(RunState.INMIGRATE, RunState.RUNNING)).isTrue();
        assertThat(RunStateTable.isAllowed(RunState.IO_ERROR, RunState.RUNNING)).isTrue();
        assertThat(RunStateTable.isAllowed(RunState.PRELAUNCH, RunState.PAUSED)).isFalse();
        assertThat(RunStateTable.isAllowed(RunState.SHUTDOWN, RunState.RUNNING)).isFalse();
        assertThat(RunStateTable.isAllowed(RunState.PAUSED, RunState.PAUSED)).isTrue();
    }

    @Test
    void anIllegalTransitionNamesBothStatesInQemuSpelling() {
        assertThatThrownBy(() -> RunStateTable.check(RunState.POSTMIGRATE, RunState.IO_ERROR))
                .isInstanceOf(IllegalRunStateTransitionException.class)
                .hasMessage("invalid run state transition: 'postmigrate' -> 'io-error'");
        assertThat(RunState.fromName("finish-migrate")).isEqualTo(RunState.FINISH_MIGRATE);
    }
}
