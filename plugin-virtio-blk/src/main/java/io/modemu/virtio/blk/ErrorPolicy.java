package io.modemu.virtio.blk;

import io.modemu.block.Errno;
import java.util.List;
import java.util.Locale;

/**
 * What the device does when a request fails on the host ({@code werror=} / {@code rerror=}), with
 * QEMU's meanings: {@code report} completes it with VIRTIO_BLK_S_IOERR, {@code ignore} completes it
 * as if it succeeded, {@code stop} keeps it and stops the VM into {@code io-error} (the request is
 * retried when the VM resumes), {@code enospc} stops on ENOSPC and reports anything else.
 */
public enum ErrorPolicy {
    REPORT, IGNORE, STOP, ENOSPC;

    /** The option values, as QEMU spells them. */
    public static final List<String> NAMES = List.of("report", "ignore", "stop", "enospc");

    /** What to do with this failure: one of {@link #REPORT}, {@link #IGNORE}, {@link #STOP}. */
    public ErrorPolicy actionFor(int errno) {
        if (this == ENOSPC) {
            return Math.abs(errno) == Errno.ENOSPC ? STOP : REPORT;
        }
        return this;
    }

    public static ErrorPolicy fromName(String name) {
        return valueOf(name.toUpperCase(Locale.ROOT));
    }

    /** QEMU's name, as in BLOCK_IO_ERROR's {@code action}. */
    public String qapiName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
