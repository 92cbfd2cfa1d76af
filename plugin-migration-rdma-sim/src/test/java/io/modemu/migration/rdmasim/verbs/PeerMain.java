package io.modemu.migration.rdmasim.verbs;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.zip.CRC32;

/**
 * The other process of the process-level tests. Prints protocol lines on stdout ({@code PORT n},
 * {@code READY}, {@code CRC x}); logs go to stderr.
 *
 * <ul>
 *   <li>{@code target DIR}: listens; accepts with private data (rkey, address, length) of a 4 MiB
 *       remotely writable region; after one message prints the region's CRC-32; exits at stdin EOF.</li>
 *   <li>{@code sink DIR}: listens, accepts, posts no receive, prints READY, waits to be killed.</li>
 *   <li>{@code flood DIR PORT}: connects to PORT; writes 1 MiB RDMA WRITEs into the region the
 *       listener announced, forever, until killed.</li>
 * </ul>
 */
public final class PeerMain {
    private PeerMain() {
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        FabricSettings settings = FabricSettings.defaults().withShmDirectory(Path.of(args[1]));
        try (RdmaDevice device = RdmaDevice.open(settings); Arena arena = Arena.ofShared()) {
            ProtectionDomain pd = device.allocateProtectionDomain();
            CompletionQueue cq = device.createCompletionQueue(256);
            QueuePair qp = pd.createQueuePair(QueuePairConfig.of(cq, 64, 64));
            switch (mode) {
                case "target" -> target(device, pd, cq, qp, arena);
                case "sink" -> sink(device, qp);
                case "flood" -> flood(device, pd, cq, qp, arena, Integer.parseInt(args[2]));
                default -> throw new IllegalArgumentException("unknown mode " + mode);
            }
        }
    }

    private static ConnectionListener listen(RdmaDevice device) throws Exception {
        ConnectionListener l = device.listen(new InetSocketAddress("127.0.0.1", 0));
        System.out.println("PORT " + l.localAddress().getPort());
        System.out.flush();
        return l;
    }

    private static void target(RdmaDevice device, ProtectionDomain pd, CompletionQueue cq, QueuePair qp, Arena arena) throws Exception {
        SharedMemory sm = device.allocateShared(4 << 20);
        MemoryRegion region = pd.register(sm.segment(), Access.LOCAL_WRITE, Access.REMOTE_WRITE);
        MemoryRegion in = pd.register(arena.allocate(64), Access.LOCAL_WRITE);
        qp.modify(QpState.INIT);
        qp.postRecv(ReceiveWorkRequest.of(1, ScatterGatherElement.of(in)));
        byte[] pdata = ByteBuffer.allocate(20).putInt(region.rkey()).putLong(region.address()).putLong(region.length()).array();
        try (ConnectionListener l = listen(device)) {
            l.accept(null).accept(qp, ConnectionParameters.withPrivateData(pdata));
        }
        WorkCompletion wc = cq.take(Duration.ofSeconds(60));
        if (wc == null || !wc.isSuccess()) {
            System.out.println("FAILED " + wc);
            return;
        }
        CRC32 crc = new CRC32();
        crc.update(sm.segment().asByteBuffer());
        System.out.println("CRC " + Long.toHexString(crc.getValue()));
        System.out.flush();
        new BufferedReader(new InputStreamReader(System.in)).readLine();
    }

    private static void sink(RdmaDevice device, QueuePair qp) throws Exception {
        try (ConnectionListener l = listen(device)) {
            l.accept(null).accept(qp, ConnectionParameters.defaults());
        }
        System.out.println("READY");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }

    private static void flood(RdmaDevice device, ProtectionDomain pd, CompletionQueue cq, QueuePair qp, Arena arena, int port) throws Exception {
        Connection c = device.connect(new InetSocketAddress("127.0.0.1", port), qp, ConnectionParameters.defaults(), Duration.ofSeconds(30));
        ByteBuffer info = ByteBuffer.wrap(c.peerPrivateData());
        int rkey = info.getInt();
        long address = info.getLong();
        long length = info.getLong();
        MemorySegment src = arena.allocate(1 << 20);
        src.fill((byte) 0x77);
        MemoryRegion mr = pd.register(src);
        System.out.println("READY");
        System.out.flush();
        long n = 0;
        while (true) {
            long at = address + (n % (length >> 20)) * (1 << 20);
            qp.postSend(new SendWorkRequest.RdmaWrite(n, List.of(ScatterGatherElement.of(mr)), at, rkey, true));
            WorkCompletion wc = cq.take(Duration.ofSeconds(60));
            if (wc == null || !wc.isSuccess()) {
                System.out.println("FAILED " + wc);
                return;
            }
            n++;
        }
    }
}
