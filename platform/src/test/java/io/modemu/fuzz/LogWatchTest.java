package io.modemu.fuzz;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Level;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** The fuzz harnesses' log watch sees what it must (an error with a stack trace below its logger) and nothing else. */
class LogWatchTest {
    @Test
    void anErrorWithAStackTraceBelowTheLoggerIsAFindingAndOtherLinesAreNot() {
        LogWatch w = LogWatch.on("io.modemu.fuzz.watched", Level.ERROR);
        LoggerFactory.getLogger("io.modemu.fuzz.watched.Part").error("plain error, no stack trace");
        LoggerFactory.getLogger("io.modemu.fuzz.watched.Part").warn("a warning", new IllegalStateException("below the level"));
        LoggerFactory.getLogger("io.modemu.fuzz.other").error("another logger", new IllegalStateException("not watched"));
        assertThatCode(() -> w.assertNone("quiet")).doesNotThrowAnyException();
        LoggerFactory.getLogger("io.modemu.fuzz.watched.Part").error("failed", new IllegalStateException("boom"));
        assertThatThrownBy(() -> w.assertNone("input 1")).isInstanceOf(AssertionError.class)
                .hasMessageContaining("input 1").hasMessageContaining("java.lang.IllegalStateException: boom");
        LoggerFactory.getLogger("io.modemu.fuzz.watched.Part").error("failed", new IllegalStateException("earlier"));
        w.reset();
        assertThatCode(() -> w.assertNone("after a reset")).doesNotThrowAnyException();
    }
}
