package io.modemu.migration.rdmasim.verbs;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * For fuzz harnesses: from {@link #capture()} on, what the plugin ({@code io.modemu.migration.rdmasim}
 * and below) logs at ERROR with a stack trace is kept as a finding: the fabric and the transport log
 * failures no code path foresaw that way. Levels and other output stay as they are (other tests share
 * the JVM).
 */
public final class FabricLogs {
    private static final List<String> UNFORESEEN = Collections.synchronizedList(new ArrayList<>());

    private FabricLogs() {
    }

    /** Starts (or restarts) keeping findings; what was logged before is forgotten. */
    public static synchronized void capture() {
        ch.qos.logback.classic.Logger plugin = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger("io.modemu.migration.rdmasim");
        if (plugin.getAppender("fuzz") == null) {
            ch.qos.logback.core.AppenderBase<ch.qos.logback.classic.spi.ILoggingEvent> a = new ch.qos.logback.core.AppenderBase<>() {
                @Override
                protected void append(ch.qos.logback.classic.spi.ILoggingEvent e) {
                    if (e.getLevel() == ch.qos.logback.classic.Level.ERROR && e.getThrowableProxy() != null) {
                        UNFORESEEN.add(e.getFormattedMessage() + ": " + e.getThrowableProxy().getClassName() + ": " + e.getThrowableProxy().getMessage());
                    }
                }
            };
            a.setName("fuzz");
            a.setContext(plugin.getLoggerContext());
            a.start();
            plugin.addAppender(a);
        }
        UNFORESEEN.clear();
    }

    /** What was logged at ERROR with a stack trace since {@link #capture()}. */
    public static List<String> unforeseen() {
        return List.copyOf(UNFORESEEN);
    }
}
