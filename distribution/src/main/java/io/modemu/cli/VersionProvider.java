package io.modemu.cli;

import io.modemu.platform.PlatformVersion;
import picocli.CommandLine;

/** {@code modemu --version}. */
public final class VersionProvider implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
        return new String[] {"modemu " + PlatformVersion.get() + " (Java " + Runtime.version() + ")"};
    }
}
