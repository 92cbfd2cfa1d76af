package io.modemu.guest.diskverify;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * The stamp disk-verify writes into every 512-byte sector of a block: the sector number, the
 * generation, a magic, a CRC-32C of the rest, and a payload derived from (sector, generation). A
 * block verifies when every sector carries the expected sector and generation and its checksum holds.
 *
 * <p>Not thread-safe (it keeps a CRC object); one per guest task.
 */
final class BlockStamp {
    static final int SECTOR = 512;
    static final int MAGIC = 0x54535644; // "DVST"
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int PAYLOAD = 24;

    private final CRC32C crc = new CRC32C();

    /** Fills {@code block} (a whole number of sectors) for the block starting at {@code firstSector}. */
    void stamp(MemorySegment block, long firstSector, long generation) {
        long sectors = block.byteSize() / SECTOR;
        for (long s = 0; s < sectors; s++) {
            MemorySegment sec = block.asSlice(s * SECTOR, SECTOR);
            long sector = firstSector + s;
            long x = sector * 0x9E37_79B9_7F4A_7C15L ^ generation;
            for (int off = PAYLOAD; off < SECTOR; off += 8) {
                x += 0x9E37_79B9_7F4A_7C15L;
                long z = x;
                z = (z ^ (z >>> 30)) * 0xBF58_476D_1CE4_E5B9L;
                z = (z ^ (z >>> 27)) * 0x94D0_49BB_1331_11EBL;
                sec.set(U64, off, z ^ (z >>> 31));
            }
            sec.set(U64, 0, sector);
            sec.set(U64, 8, generation);
            sec.set(U32, 16, MAGIC);
            sec.set(U32, 20, checksum(sec));
        }
    }

    /**
     * Checks {@code block} against the stamp of ({@code firstSector}, {@code generation}).
     *
     * @return null if it verifies, else what is wrong
     */
    String verify(MemorySegment block, long firstSector, long generation) {
        long sectors = block.byteSize() / SECTOR;
        for (long s = 0; s < sectors; s++) {
            MemorySegment sec = block.asSlice(s * SECTOR, SECTOR);
            long sector = firstSector + s;
            if (sec.get(U32, 16) != MAGIC) {
                return "sector " + sector + ": no stamp";
            }
            if (sec.get(U64, 0) != sector) {
                return "sector " + sector + ": stamped for sector " + sec.get(U64, 0);
            }
            if (sec.get(U64, 8) != generation) {
                return "sector " + sector + ": generation " + sec.get(U64, 8) + ", expected " + generation;
            }
            if (sec.get(U32, 20) != checksum(sec)) {
                return "sector " + sector + ": checksum mismatch";
            }
        }
        return null;
    }

    private int checksum(MemorySegment sector) {
        crc.reset();
        crc.update(sector.asSlice(PAYLOAD).asByteBuffer());
        return (int) crc.getValue();
    }
}
