package io.modemu.migration.internal;

import io.modemu.machine.DirtyBitmap;

/**
 * The migration stream format, version 1. Every multi-byte value is big-endian.
 *
 * <pre>
 * stream header (32 bytes, each channel):  u64 magic "MODEMUMS" | u32 version | u16 kind | u16 channel index | u64 session hi | u64 session lo
 * record (16-byte header, then a payload):   u8 type | u8 flags | u16 a | u32 b | u64 c
 *
 * source to destination                          a            b                c
 *   CONFIG    configuration, checked first       -            payload length   CRC-32C of the payload
 *   PAGES     b pages of RAM follow              block        page count       byte offset in the block
 *   ZERO      b zero pages                       block        page count       byte offset in the block
 *   PASS_END  end of a RAM pass (flag FINAL)     -            pass number      CRC-32C of the channel's record headers before it
 *   RAM_DONE  every page is out (main channel)   -            last pass        -
 *   DEVICE    one-shot section                   section id   payload length   version &lt;&lt; 32 | CRC-32C
 *   NOP       keep-alive                         -            -                -
 *   EOF       end of the stream                  -            header CRC-32C   pages (normal + zero, every channel)
 *   COMMIT    the source let go: start           -            -                -
 * destination to source (return path)
 *   ACCEPT    configuration accepted             -            token length     -
 *   ERROR     the destination failed             -            message length   -
 *   LOADED    everything loaded, awaiting COMMIT -            -                -
 *   RUNNING   the destination runs               -            -                ns since it started running
 *   APPLIED   (one-sided RAM only) every record  -            pass number      -
 *             up to that PASS_END is applied
 * </pre>
 *
 * Data channels ({@code multifd}) carry only PAGES, ZERO, PASS_END and NOP. Integrity: CONFIG and
 * DEVICE payloads carry a CRC-32C; every PASS_END, and EOF on the main channel, carries the CRC-32C
 * of every record header sent before it on its channel; EOF carries the page total the destination
 * counted for itself; COMMIT and the NOPs around it must be exact; every
 * length, block index, page count and offset is bounds-checked before use. Page data has no checksum:
 * pages are sent from live guest RAM, which may change under the send (the dirty bitmap resends them).
 */
final class Wire {
    static final long MAGIC = 0x4d4f44454d554d53L;
    static final int VERSION = 1;
    static final int STREAM_HEADER = 32;
    static final int HEADER = 16;
    static final int PAGE = DirtyBitmap.PAGE_SIZE;

    static final int KIND_MAIN = 0;
    static final int KIND_DATA = 1;

    static final int CONFIG = 0x01;
    static final int PAGES = 0x02;
    static final int ZERO = 0x03;
    static final int PASS_END = 0x04;
    static final int RAM_DONE = 0x05;
    static final int DEVICE = 0x06;
    static final int NOP = 0x07;
    static final int EOF = 0x08;
    static final int COMMIT = 0x09;

    static final int ACCEPT = 0x41;
    static final int ERROR = 0x42;
    static final int LOADED = 0x43;
    static final int RUNNING = 0x44;
    static final int APPLIED = 0x45;

    static final int FLAG_FINAL = 1;

    /** Pages of one PAGES record: 1 MiB, large enough for one big gathering write. */
    static final int MAX_PAGES_PER_RECORD = 256;
    /** Pages of one ZERO record: 4 MiB, so that the destination checks its RAM while the source scans on. */
    static final int MAX_ZERO_PAGES_PER_RECORD = 1024;
    static final int MAX_CONFIG = 1 << 20;
    static final int MAX_DEVICE = 64 << 20;
    static final int MAX_TOKEN = 16 << 20;
    static final int MAX_ERROR = 64 << 10;

    /** The section name of RAM, the one iterative section. */
    static final String RAM_SECTION = "ram";
    static final int RAM_VERSION = 1;

    private Wire() {
    }

    static String typeName(int type) {
        return switch (type) {
            case CONFIG -> "CONFIG";
            case PAGES -> "PAGES";
            case ZERO -> "ZERO";
            case PASS_END -> "PASS_END";
            case RAM_DONE -> "RAM_DONE";
            case DEVICE -> "DEVICE";
            case NOP -> "NOP";
            case EOF -> "EOF";
            case COMMIT -> "COMMIT";
            case ACCEPT -> "ACCEPT";
            case ERROR -> "ERROR";
            case LOADED -> "LOADED";
            case RUNNING -> "RUNNING";
            case APPLIED -> "APPLIED";
            default -> String.format("0x%02x", type);
        };
    }
}
