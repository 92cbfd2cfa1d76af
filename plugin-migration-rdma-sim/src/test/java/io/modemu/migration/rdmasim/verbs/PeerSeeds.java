package io.modemu.migration.rdmasim.verbs;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Well-formed starting points for {@link PeerFuzzing}: each reaches a different part of the victim
 * (placing messages, acknowledgements of its own requests, NAKs and notices, a lying table, the
 * handshake). Checked in under {@code PeerFuzzTestInputs/peer/}; {@link PeerSeedsTest} runs them and
 * checks that the files match, and rewrites them with {@code -Dfuzz.recordSeeds=<that directory>}.
 */
final class PeerSeeds {
    private PeerSeeds() {
    }

    static Map<String, byte[]> all() {
        Map<String, byte[]> seeds = new LinkedHashMap<>();
        byte[] hello = "hello".getBytes(StandardCharsets.UTF_8);
        seeds.put("messages-into-receives", new PeerFuzzing.Writer(0)
                .message(Frame.OP_SEND, 0, 0, 0, hello).message(Frame.OP_SEND_IMM, 1, 42, 0, new byte[1024])
                .message(Frame.OP_WRITE_IMM, 2, 7, 0, new byte[0]).victimRecv().victimRecv().message(Frame.OP_SEND, 3, 0, 0, new byte[1025])
                .toBytes());
        seeds.put("acknowledgements-of-the-victims-requests", new PeerFuzzing.Writer(1)
                .victimSend(100).victimSend(4096).ack(Frame.ACK, 1).ack(Frame.RNR_WAIT, 2).ack(Frame.ACK, 2)
                .victimWrite(0, 4096, true).victimWrite(32 * 1024 - 10, 100, true).victimWrite(0, 10, false).ack(Frame.ACK, 5).toBytes());
        seeds.put("naks-and-notices", new PeerFuzzing.Writer(0)
                .victimSend(10).nak(1, WcStatus.REM_ACCESS_ERR.code(), "no".getBytes(StandardCharsets.UTF_8), 0)
                .notice(Frame.ACCESS_VIOLATION, 0, "bad key".getBytes(StandardCharsets.UTF_8), 0)
                .notice(Frame.QP_DOWN, 1, "bye".getBytes(StandardCharsets.UTF_8), 0).toBytes());
        seeds.put("lying-lengths", new PeerFuzzing.Writer(1)
                .message(Frame.OP_SEND, 0, 0, 3, hello).nak(1, 99, hello, 6).notice(Frame.QP_DOWN, 0, hello, 2).toBytes());
        seeds.put("a-lying-table", new PeerFuzzing.Writer(0)
                .table(SharedTable.HEADER + 8, new byte[] {-1, -1, -1, -1, -1, -1, -1, 127}).victimWrite(0, 4096, true)
                .table(0, new byte[16]).victimWrite(4096, 4096, true).raw(new byte[] {1, 0, 0, 0}).toBytes());
        seeds.put("a-garbage-connect-request", new PeerFuzzing.Writer(2).handshake("not an rdma-sim peer".getBytes(StandardCharsets.UTF_8)).toBytes());
        seeds.put("a-cut-connect-request", new PeerFuzzing.Writer(2).handshake(new byte[] {0x31, 0x4D, 0x43, 0x53, 0x44, 0x52, 0x44, 0x4D, 0, 1, 1}).toBytes());
        seeds.put("a-garbage-ready-to-use", new PeerFuzzing.Writer(4).handshake(new byte[] {1, 2, 3}).toBytes());
        seeds.put("a-garbage-reply", new PeerFuzzing.Writer(3).handshake(new byte[40]).toBytes());
        return seeds;
    }

    /** Writes every seed into {@code dir} (after a change of the input layout). */
    static void record(Path dir) throws java.io.IOException {
        Files.createDirectories(dir);
        for (Map.Entry<String, byte[]> e : all().entrySet()) {
            Files.write(dir.resolve(e.getKey()), e.getValue());
        }
    }
}
