package io.modemu.platform;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Files named after the process that made them, {@code PREFIX<pid>-…}, in directories shared by every
 * process of the host (such as {@code /dev/shm}), where a process killed before it could clean up
 * leaves its files for good: a later process removes those whose owner no longer exists.
 */
public final class ProcessFiles {
    private static final Logger log = LoggerFactory.getLogger(ProcessFiles.class);

    private ProcessFiles() {
    }

    /** {@code prefix} followed by this process's pid and a dash: the start of the name of a file it makes. */
    public static String namePrefix(String prefix) {
        return prefix + ProcessHandle.current().pid() + "-";
    }

    /**
     * Removes the files {@code dir/PREFIX<pid>-…} of processes that no longer exist. Names that do not
     * carry a pid after the prefix are left alone; a failure is logged, never thrown.
     */
    public static void sweep(Path dir, String prefix) {
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, prefix + "*")) {
            for (Path f : files) {
                String rest = f.getFileName().toString().substring(prefix.length());
                int dash = rest.indexOf('-');
                if (dash <= 0) {
                    continue;
                }
                long owner;
                try {
                    owner = Long.parseLong(rest.substring(0, dash));
                } catch (NumberFormatException e) {
                    continue;
                }
                if (ProcessHandle.of(owner).map(ProcessHandle::isAlive).orElse(false)) {
                    continue;
                }
                try {
                    Files.deleteIfExists(f);
                    log.info("removed {}, left behind by process {} which no longer exists", f, owner);
                } catch (IOException e) {
                    log.warn("cannot remove stale {}: {}", f, e.getMessage());
                }
            }
        } catch (IOException | RuntimeException e) {
            log.warn("cannot look for stale files in {}: {}", dir, e.getMessage());
        }
    }
}
