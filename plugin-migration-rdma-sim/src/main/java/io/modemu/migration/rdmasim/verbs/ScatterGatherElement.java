package io.modemu.migration.rdmasim.verbs;

/**
 * One piece of a local buffer ({@code ibv_sge}): {@code length} bytes at virtual address
 * {@code address}, inside the memory region whose local key is {@code lkey}.
 */
public record ScatterGatherElement(long address, int length, int lkey) {
    public ScatterGatherElement {
        if (length < 0) {
            throw new IllegalArgumentException("scatter/gather element length " + length + " is negative");
        }
    }

    /** {@code length} bytes at {@code offset} in {@code mr}. */
    public static ScatterGatherElement of(MemoryRegion mr, long offset, int length) {
        return new ScatterGatherElement(mr.address() + offset, length, mr.lkey());
    }

    /** The whole of {@code mr}, which must be shorter than 2 GiB. */
    public static ScatterGatherElement of(MemoryRegion mr) {
        return of(mr, 0, Math.toIntExact(mr.length()));
    }
}
