package io.modemu.migration.rdmasim.verbs;

import java.lang.foreign.MemorySegment;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A protection domain ({@code ibv_pd}): memory regions and queue pairs are created in one, and a
 * request reaches a region only through a queue pair of the same domain, on either side.
 */
public final class ProtectionDomain implements AutoCloseable {
    private final RdmaDevice device;
    private final int id;
    final Set<MemoryRegion> regions = ConcurrentHashMap.newKeySet();
    final Set<QueuePair> queuePairs = ConcurrentHashMap.newKeySet();
    /** Every process ever connected to a queue pair of this domain: the ones that can access its regions. */
    final Set<Long> peerPids = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    ProtectionDomain(RdmaDevice device, int id) {
        this.device = device;
        this.id = id;
    }

    public int id() {
        return id;
    }

    RdmaDevice device() {
        return device;
    }

    /**
     * {@code ibv_reg_mr} over {@code memory} (native memory; with remote access, memory the device can
     * share: see {@link SharedMemory}).
     *
     * @throws VerbsException INVALID_ARGUMENT for heap memory, an empty region, REMOTE_WRITE without
     *                        LOCAL_WRITE, or remote access to memory the peer cannot reach;
     *                        NO_RESOURCES when the region table is full
     */
    public MemoryRegion register(MemorySegment memory, Access... access) {
        EnumSet<Access> set = EnumSet.noneOf(Access.class);
        set.addAll(java.util.Arrays.asList(access));
        return register(memory, set);
    }

    public MemoryRegion register(MemorySegment memory, Set<Access> access) {
        checkOpen();
        return device.register(this, memory, access);
    }

    /**
     * Deregisters several regions of this domain at once: equivalent to {@link MemoryRegion#deregister()}
     * on each (when it returns, no remote access to any of them is in progress or will start), but the
     * accesses in progress are waited for once for all of them.
     *
     * @throws VerbsException INVALID_STATE when one was already deregistered (then none is);
     *                        INVALID_ARGUMENT when one belongs to another domain
     */
    public void deregister(java.util.Collection<MemoryRegion> mrs) {
        for (MemoryRegion mr : mrs) {
            if (mr.protectionDomain() != this) {
                throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, mr + " belongs to protection domain " + mr.protectionDomain().id()
                        + ", not " + id);
            }
        }
        device.deregister(mrs);
    }

    /** {@code ibv_create_qp}: a reliable-connected queue pair in RESET. */
    public QueuePair createQueuePair(QueuePairConfig config) {
        checkOpen();
        return device.createQueuePair(this, config);
    }

    private void checkOpen() {
        if (closed) {
            throw new VerbsException(VerbsException.Reason.CLOSED, "protection domain " + id + " is deallocated");
        }
    }

    /**
     * {@code ibv_dealloc_pd}.
     *
     * @throws VerbsException BUSY while regions or queue pairs remain in it
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        if (!regions.isEmpty() || !queuePairs.isEmpty()) {
            throw new VerbsException(VerbsException.Reason.BUSY, "protection domain " + id + " still holds " + regions.size()
                    + " memory regions and " + queuePairs.size() + " queue pairs: deregister and destroy them first");
        }
        closed = true;
        device.forget(this);
    }

    /** Whether no process that could access this domain's regions is alive any more. */
    boolean allPeersGone() {
        for (long pid : peerPids) {
            if (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                return false;
            }
        }
        return true;
    }

    @Override
    public String toString() {
        return "PD[" + id + "]";
    }
}
