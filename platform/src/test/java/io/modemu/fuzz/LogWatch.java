package io.modemu.fuzz;

import static org.assertj.core.api.Assertions.fail;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.LoggerFactory;

/**
 * What a fuzz harness counts as a failure nobody foresaw: a message logged at {@code level} or above
 * with a stack trace under one logger (code that catches what its checks did not expect logs it so).
 * Levels and other output stay as they are: other tests share the JVM. Thread-safe.
 */
public final class LogWatch {
    private final List<String> found = new CopyOnWriteArrayList<>();

    private LogWatch() {
    }

    /** Starts watching {@code loggerName}. */
    public static LogWatch on(String loggerName, Level level) {
        LogWatch w = new LogWatch();
        Logger logger = (Logger) LoggerFactory.getLogger(loggerName);
        AppenderBase<ILoggingEvent> a = new AppenderBase<>() {
            @Override
            protected void append(ILoggingEvent e) {
                if (e.getLevel().isGreaterOrEqual(level) && e.getThrowableProxy() != null) {
                    w.add(e.getFormattedMessage() + ": " + e.getThrowableProxy().getClassName() + ": " + e.getThrowableProxy().getMessage());
                }
            }
        };
        a.setName("fuzz-" + loggerName);
        a.setContext(logger.getLoggerContext());
        a.start();
        logger.addAppender(a);
        return w;
    }

    /** Records a finding that did not come through the log (a thread that died, say). */
    public void add(String finding) {
        found.add(finding);
    }

    /** Forgets what was seen so far (before an input: what other tests logged is theirs). */
    public void reset() {
        found.clear();
    }

    /** Fails naming {@code what} and everything seen since the last reset. */
    public void assertNone(String what) {
        if (!found.isEmpty()) {
            List<String> seen = new ArrayList<>(found);
            found.clear();
            fail(what + ": an error nobody foresaw: " + seen);
        }
    }
}
