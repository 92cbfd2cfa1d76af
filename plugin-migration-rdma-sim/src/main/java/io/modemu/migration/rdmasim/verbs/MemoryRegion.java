package io.modemu.migration.rdmasim.verbs;

import java.lang.foreign.MemorySegment;
import java.util.Set;

/**
 * Registered memory ({@code ibv_mr}): a native segment the adapter may use, addressed by virtual
 * address, with a local key for this side's scatter/gather lists and a remote key the peer puts in
 * its one-sided requests. Here both keys are the same 32-bit value: the region's table index shifted
 * left by 8, ORed with an 8-bit generation, so a key that was deregistered and whose slot was reused
 * is refused rather than aliased.
 */
public final class MemoryRegion {
    private final ProtectionDomain pd;
    private final int index;
    private final int key;
    private final MemorySegment segment;
    private final int accessBits;
    private final SharedMemory shared;
    private volatile boolean registered = true;

    MemoryRegion(ProtectionDomain pd, int index, int key, MemorySegment segment, int accessBits, SharedMemory shared) {
        this.pd = pd;
        this.index = index;
        this.key = key;
        this.segment = segment;
        this.accessBits = accessBits;
        this.shared = shared;
    }

    public int lkey() {
        return key;
    }

    public int rkey() {
        return key;
    }

    /** The virtual address of the first byte, what scatter/gather elements and remote addresses use. */
    public long address() {
        return segment.address();
    }

    public long length() {
        return segment.byteSize();
    }

    public Set<Access> access() {
        return Access.fromBits(accessBits);
    }

    /** The registered memory. */
    public MemorySegment segment() {
        return segment;
    }

    public ProtectionDomain protectionDomain() {
        return pd;
    }

    public boolean isRegistered() {
        return registered;
    }

    /**
     * {@code ibv_dereg_mr}. When it returns, no remote access to the region is in progress and none
     * will start; local requests already posted that name it fail.
     *
     * @throws VerbsException INVALID_STATE when it was already deregistered
     */
    public void deregister() {
        pd.device().deregister(this);
    }

    int index() {
        return index;
    }

    int key() {
        return key;
    }

    int accessBits() {
        return accessBits;
    }

    SharedMemory shared() {
        return shared;
    }

    boolean markDeregistered() {
        boolean was = registered;
        registered = false;
        return was;
    }

    @Override
    public String toString() {
        return String.format("MR[key=0x%x [0x%x, 0x%x) %s pd=%d]", key, address(), address() + length(), access(), pd.id());
    }
}
