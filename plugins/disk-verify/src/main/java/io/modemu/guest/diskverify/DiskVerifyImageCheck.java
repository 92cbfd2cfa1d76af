package io.modemu.guest.diskverify;

import io.modemu.machine.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Checks a disk image against disk-verify's state in guest RAM, from outside the guest: does the
 * disk hold every write the guest saw acknowledged? Migration tests ask it of a destination (or of
 * a source that carried on after a failed migration); the program itself only ever checks what it
 * reads back.
 *
 * <p>What the state allows, in generation {@code g} with write cursor {@code w} (blocks
 * {@code 0..w-1} were submitted for writing in {@code g}):
 * <ul>
 *   <li>a block below {@code w} whose write the guest saw complete holds {@code g};</li>
 *   <li>a block whose write is still outstanding (its request slot says writing: the device may
 *       have carried it out or not yet taken it) holds {@code g} or {@code g - 1}, the whole block
 *       one or the other;</li>
 *   <li>a block at or above {@code w} still holds {@code g - 1}.</li>
 * </ul>
 * Generation 0 means never written: no stamp at all. Every stamp must name its own sector and carry
 * a valid checksum, so a block from elsewhere, a torn write or a generation that went backwards is
 * found.
 *
 * <p>Call it with the guest stopped (its vCPU paused) and the disk's requests drained, as a stopped
 * VM has them: a write in progress could otherwise be half on the disk. Reads RAM and the image only.
 */
public final class DiskVerifyImageCheck {
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private DiskVerifyImageCheck() {
    }

    /**
     * Checks {@code image} (the disk's bytes from offset 0) against the disk-verify state at the start
     * of guest RAM ({@code memory}'s first RAM block, where the program keeps it).
     *
     * @return null when the image holds every acknowledged write, else what is wrong with the first
     *         bad block (or why there is nothing to check against)
     */
    public static String check(GuestMemory memory, MemorySegment image) {
        DiskVerifyState state = new DiskVerifyState(memory, memory.blocks().getFirst().base());
        if (!state.isPresent()) {
            return "disk-verify has no state in guest RAM (it never ran here)";
        }
        DiskVerifyConfig config = state.config();
        long generation = state.u64(DiskVerifyState.O_GENERATION);
        long writeCursor = state.u64(DiskVerifyState.O_WRITE_CURSOR);
        if (config.depth() < 1 || config.depth() > DiskVerifyState.MAX_DEPTH || config.blockSize() < BlockStamp.SECTOR
                || config.blockSize() % BlockStamp.SECTOR != 0 || generation < 1 || writeCursor > config.blocks()) {
            return "disk-verify's state in guest RAM is inconsistent: " + config + ", generation " + generation + ", write cursor " + writeCursor;
        }
        if (Math.multiplyHigh(config.blocks(), config.blockSize()) != 0 || config.blocks() * config.blockSize() > image.byteSize()) {
            return "the image has " + image.byteSize() + " bytes, disk-verify writes " + config.blocks() + " blocks of " + config.blockSize();
        }
        long[] outstanding = new long[config.depth()];
        int n = 0;
        for (int slot = 0; slot < config.depth(); slot++) {
            if (state.slotState(slot) == DiskVerifyState.SLOT_WRITING) {
                outstanding[n++] = state.slotBlock(slot);
            }
        }
        BlockStamp stamp = new BlockStamp();
        long sectorsPerBlock = config.blockSize() / BlockStamp.SECTOR;
        for (long block = 0; block < config.blocks(); block++) {
            MemorySegment data = image.asSlice(block * config.blockSize(), config.blockSize());
            long firstSector = block * sectorsPerBlock;
            boolean inFlight = false;
            for (int i = 0; i < n; i++) {
                inFlight |= outstanding[i] == block;
            }
            long expected = block < writeCursor && !inFlight ? generation : generation - 1;
            long found = data.get(U32, 16) == BlockStamp.MAGIC ? data.get(U64, 8) : 0;
            if (inFlight && found == generation) {
                expected = generation;
            }
            String problem = expected == 0 ? unstamped(data, firstSector) : stamp.verify(data, firstSector, expected);
            if (problem != null) {
                return "block " + block + " (generation " + generation + ", write cursor " + writeCursor + (inFlight ? ", its write outstanding" : "")
                        + "): expected generation " + (inFlight ? (generation - 1) + " or " + generation : Long.toString(expected)) + ": " + problem;
            }
        }
        return null;
    }

    private static String unstamped(MemorySegment block, long firstSector) {
        for (long s = 0; s < block.byteSize() / BlockStamp.SECTOR; s++) {
            if (block.get(U32, s * BlockStamp.SECTOR + 16) == BlockStamp.MAGIC) {
                return "sector " + (firstSector + s) + ": stamped (generation " + block.get(U64, s * BlockStamp.SECTOR + 8) + ") but never written";
            }
        }
        return null;
    }
}
