package io.modemu.migration.rdmasim.verbs;

import java.util.EnumSet;
import java.util.Set;

/**
 * Access rights of a memory region, as {@code ibv_access_flags}. Local read is always allowed.
 *
 * <p>As in verbs, {@link #REMOTE_WRITE} requires {@link #LOCAL_WRITE}: registration fails otherwise.
 */
public enum Access {
    /** The local adapter may write the region: a receive buffer, the target of an RDMA READ. */
    LOCAL_WRITE(1),
    /** The peer may write the region with RDMA WRITE. */
    REMOTE_WRITE(2),
    /** The peer may read the region with RDMA READ. */
    REMOTE_READ(4);

    final int bit;

    Access(int bit) {
        this.bit = bit;
    }

    static int bits(Set<Access> access) {
        int b = 0;
        for (Access a : access) {
            b |= a.bit;
        }
        return b;
    }

    static Set<Access> fromBits(int bits) {
        EnumSet<Access> s = EnumSet.noneOf(Access.class);
        for (Access a : values()) {
            if ((bits & a.bit) != 0) {
                s.add(a);
            }
        }
        return s;
    }

    static boolean anyRemote(int bits) {
        return (bits & (REMOTE_WRITE.bit | REMOTE_READ.bit)) != 0;
    }
}
