package io.modemu.platform;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** The platform's version, the one {@code Plugin-Requires} is checked against. */
public final class PlatformVersion {
    private static final String VERSION = load();

    private PlatformVersion() {
    }

    private static String load() {
        try (InputStream in = PlatformVersion.class.getResourceAsStream("version.properties")) {
            Properties p = new Properties();
            if (in != null) {
                p.load(in);
            }
            String v = p.getProperty("version", "");
            if (v.isEmpty() || v.startsWith("$")) {
                throw new IllegalStateException("the platform jar carries no version (version.properties not filtered)");
            }
            return v;
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the platform version", e);
        }
    }

    /** For example {@code 0.1.0}. */
    public static String get() {
        return VERSION;
    }
}
