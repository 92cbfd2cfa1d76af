package io.modemu.migration.rdmasim.verbs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The fuzz target for what a peer sends over the fabric (docs/fuzzing.md): the connection manager's
 * handshake, the frames on the connection's socket, and the peer's shared table, against a real device
 * (the victim) in this process. The peer is an impostor: a real device (so that its table exists and
 * the victim can map it) whose wire the input plays by hand.
 *
 * <p>Input: a mode byte, then what the mode reads. Mode bit 0: the victim connects to the impostor
 * (else the impostor connects to the victim's listener); bit 1: the impostor's first handshake message
 * (REQ, or REP) is the input's next bytes, length-prefixed, instead of a valid one; bit 2 (impostor
 * connecting only): so is its RTU. After a handshake that succeeded, operations until the input ends
 * (at most {@link #MAX_OPS}), each a selector byte and its fields: raw bytes onto the socket; a
 * message, acknowledgement, receiver-not-ready notice, NAK, access-violation or queue-pair-down notice
 * with fields from the input (lengths that lie included); bytes written into the impostor's table
 * file; a SEND, an RDMA WRITE (into the impostor's region, or beside it) or a receive posted by the
 * victim. Then the impostor closes its socket.
 *
 * <p>Properties, for every input:
 * <ul>
 *   <li>nothing hangs: every step ends within its bound;</li>
 *   <li>a handshake that fails does so with an {@link IOException} whose message names the peer, and a
 *       listener that refused a connector takes the next one;</li>
 *   <li>once connected, the victim's queue pair ends in ERROR with a reason, and every request it
 *       posted completes exactly once (no completion for a request it never posted);</li>
 *   <li>the victim's memory outside the buffers of its receives keeps its canary, and so does the
 *       impostor's shared memory outside the region the victim may write;</li>
 *   <li>no thread of the fabric failed with an unforeseen exception (the fabric logs those at ERROR
 *       with a stack trace: {@link FabricLogs}), and both devices close.</li>
 * </ul>
 */
final class PeerFuzzing {
    static final int MAX_OPS = 48;
    private static final Duration STEP = Duration.ofSeconds(20);
    private static final byte CANARY = (byte) 0xA5;
    private static final int LOCAL_BYTES = 64 * 1024;
    private static final int RECV_BYTES = 1024;
    private static final int SHARED_BYTES = 64 * 1024;
    private static final int REGION_FROM = 16 * 1024;
    private static final int REGION_BYTES = 32 * 1024;
    private static final int MAX_SENDS = 12;
    private static final int MAX_RECVS = 12;

    private PeerFuzzing() {
    }

    /** Builds inputs (seeds and generated ones); the layout is {@link #run}'s. */
    static final class Writer {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Writer(int mode) {
            out.write(mode);
        }

        Writer u8(int v) {
            out.write(v);
            return this;
        }

        Writer u16(int v) {
            return u8(v >>> 8).u8(v);
        }

        Writer u32(int v) {
            return u16(v >>> 16).u16(v);
        }

        Writer u64(long v) {
            return u32((int) (v >>> 32)).u32((int) v);
        }

        Writer bytes(byte[] b) {
            out.writeBytes(b);
            return this;
        }

        /** A handshake message of the input's own (modes with bit 1 or 2). */
        Writer handshake(byte[] message) {
            return u16(message.length).bytes(message);
        }

        Writer raw(byte[] b) {
            return u8(OP_RAW).u16(b.length).bytes(b);
        }

        /** A message frame: its opcode, PSN, immediate, how its length lies (see {@link #declared}), its payload. */
        Writer message(int opcode, int psn, int immediate, int lie, byte[] payload) {
            return u8(OP_MSG).u8(opcode).u32(psn).u32(immediate).u8(lie).u16(payload.length).bytes(payload);
        }

        Writer ack(int type, int psn) {
            return u8(type == Frame.ACK ? OP_ACK : OP_RNR).u32(psn);
        }

        Writer nak(int psn, int code, byte[] detail, int lie) {
            return u8(OP_NAK).u32(psn).u8(code).u8(lie).u16(detail.length).bytes(detail);
        }

        Writer notice(int type, int flags, byte[] detail, int lie) {
            return u8(type == Frame.ACCESS_VIOLATION ? OP_ACCESS : OP_DOWN).u8(flags).u8(lie).u16(detail.length).bytes(detail);
        }

        Writer table(int offset, byte[] b) {
            return u8(OP_TABLE).u32(offset).u8(b.length).bytes(b);
        }

        Writer victimSend(int length) {
            return u8(OP_SEND).u16(length);
        }

        Writer victimWrite(int offset, int length, boolean rightKey) {
            return u8(OP_WRITE).u32(offset).u16(length).u8(rightKey ? 0 : 1);
        }

        Writer victimRecv() {
            return u8(OP_RECV);
        }

        byte[] toBytes() {
            return out.toByteArray();
        }
    }

    static final int OP_RAW = 0;
    static final int OP_MSG = 1;
    static final int OP_ACK = 2;
    static final int OP_RNR = 3;
    static final int OP_NAK = 4;
    static final int OP_ACCESS = 5;
    static final int OP_DOWN = 6;
    static final int OP_TABLE = 7;
    static final int OP_SEND = 8;
    static final int OP_WRITE = 9;
    static final int OP_RECV = 10;
    static final int OPS = 11;

    /** The length a frame declares, from a lie selector: 0 the truth, else short, long, huge, negative or at a limit. */
    static long declared(int lie, int actual, long limit) {
        return switch (lie % 8) {
            case 1 -> Math.max(0, actual - 1);
            case 2 -> actual + 1L;
            case 3 -> 1L << 40;
            case 4 -> -1L;
            case 5 -> limit;
            case 6 -> limit + 1;
            case 7 -> 0;
            default -> actual;
        };
    }

    /**
     * What one input did: whether the impostor got connected and played its operations, the statuses of
     * the victim's completions, and the reason its queue pair went down.
     */
    record Outcome(boolean connected, Map<WcStatus, Integer> completions, String errorReason) {
    }

    /** Runs one input and checks the properties; throws an {@link AssertionError} naming the broken one. */
    static Outcome run(byte[] input) {
        // an interrupt left by the previous input (jqwik interrupts a try that outlives its shrinking time) is not this input's
        Thread.interrupted();
        FabricLogs.capture();
        FuzzInput in = new FuzzInput(input);
        int mode = in.u8();
        Outcome o;
        Run r = null;
        try (TestFabric fabric = new TestFabric()) {
            r = new Run(fabric, in, mode);
            o = r.go();
        } catch (AssertionError e) {
            throw e;
        } catch (Exception e) {
            throw new AssertionError("the harness failed: " + e, e);
        } finally {
            if (r != null) {
                r.threads.forEach(Thread::interrupt);
            }
        }
        assertThat(FabricLogs.unforeseen()).as("errors the fabric did not foresee (logged with a stack trace)").isEmpty();
        return o;
    }

    private static final class Run {
        private final TestFabric fabric;
        private final FuzzInput in;
        private final int mode;
        private final RdmaDevice victim;
        private final RdmaDevice impostor;
        private final QueuePair qp;
        private final CompletionQueue cq;
        private final QueuePair impostorQp;
        private final MemorySegment local;
        private final MemoryRegion localMr;
        private final SharedMemory shared;
        private final MemoryRegion target;
        /** wr_id of every request the victim posted, and how many completions each had. */
        private final Map<Long, Integer> posted = new HashMap<>();
        /** The buffers of the victim's receives: offsets into {@link #local}. */
        private final Set<Integer> recvBuffers = new HashSet<>();
        private final List<Thread> threads = new ArrayList<>();
        private long nextWrId = 1;
        private int sends;
        private int recvs;

        Run(TestFabric fabric, FuzzInput in, int mode) throws IOException {
            this.fabric = fabric;
            this.in = in;
            this.mode = mode;
            victim = fabric.device();
            cq = victim.createCompletionQueue(256);
            qp = victim.allocateProtectionDomain().createQueuePair(QueuePairConfig.of(cq, 16, 16));
            local = fabric.arena().allocate(LOCAL_BYTES, 4096);
            local.fill(CANARY);
            localMr = qp.protectionDomain().register(local, Access.LOCAL_WRITE);
            impostor = fabric.device();
            impostorQp = impostor.allocateProtectionDomain().createQueuePair(QueuePairConfig.of(impostor.createCompletionQueue(4), 4, 4));
            impostor.publishQueuePair(impostorQp, QpState.RTS);
            shared = impostor.allocateShared(SHARED_BYTES);
            shared.segment().fill(CANARY);
            target = impostorQp.protectionDomain().register(shared.segment().asSlice(REGION_FROM, REGION_BYTES), Access.LOCAL_WRITE,
                    Access.REMOTE_WRITE);
        }

        Outcome go() throws Exception {
            SocketChannel ch = (mode & 1) != 0 ? victimConnects() : impostorConnects();
            if (ch == null) {
                return new Outcome(false, Map.of(), null);
            }
            CompletableFuture<Void> drain = drain(ch);
            try (ch) {
                for (int i = 0; i < 2; i++) {
                    postRecv();
                }
                for (int n = 0; n < MAX_OPS && !in.atEnd(); n++) {
                    if (!operation(ch)) {
                        break;
                    }
                }
                // an orderly close: the victim reads everything sent, then the end; closing with its frames
                // unread would reset the connection, and a reset drops what the victim has not read yet
                try {
                    ch.shutdownOutput();
                } catch (IOException e) {
                    // the victim closed it already
                }
                drain.get(STEP.toSeconds(), TimeUnit.SECONDS);
            }
            // the impostor has gone: the victim's queue pair goes down, and every request it posted completes
            long deadline = System.nanoTime() + STEP.toNanos();
            while (qp.state() != QpState.ERROR) {
                assertThat(System.nanoTime() - deadline).as("the victim's QP is still %s %s after the impostor closed", qp.state(), STEP).isNegative();
                Thread.sleep(2);
            }
            assertThat(qp.errorReason()).as("the reason of the victim's ERROR").isNotBlank();
            Map<WcStatus, Integer> statuses = collectCompletions();
            checkCanaries();
            return new Outcome(true, statuses, qp.errorReason());
        }

        /** The victim connects to the impostor's socket: the impostor's REP is valid or the input's. */
        private SocketChannel victimConnects() throws Exception {
            boolean rawRep = (mode & 2) != 0;
            byte[] rep = rawRep ? in.bytes(in.u16()) : CmMessage.endpoint(CmMessage.REP, impostor.endpoint(impostorQp, ConnectionParameters.defaults()));
            try (ServerSocketChannel server = ServerSocketChannel.open()) {
                server.bind(new InetSocketAddress("127.0.0.1", 0));
                CompletableFuture<SocketChannel> impostorSide = async("peer-fuzz-impostor", () -> {
                    try {
                        SocketChannel ch = server.accept();
                        CmMessage.read(new DataInputStream(ch.socket().getInputStream()), "victim");
                        CmMessage.write(ch, rep);
                        if (rawRep) {
                            // the input's REP may be cut short: tell the victim there is no more
                            ch.shutdownOutput();
                        }
                        return ch;
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
                try {
                    victim.connect((InetSocketAddress) server.getLocalAddress(), qp, ConnectionParameters.defaults(), STEP);
                } catch (IOException e) {
                    assertThat(rawRep).as("a valid handshake failed: %s", e).isTrue();
                    assertThat(e.getMessage()).as("a failed handshake names the peer").contains("127.0.0.1");
                    impostorSide.get(STEP.toSeconds(), TimeUnit.SECONDS).close();
                    return null;
                }
                SocketChannel ch = impostorSide.get(STEP.toSeconds(), TimeUnit.SECONDS);
                // the RTU
                CmMessage.read(new DataInputStream(ch.socket().getInputStream()), "victim");
                if (rawRep) {
                    // its output is shut: there is nothing more it can say
                    ch.close();
                    return null;
                }
                return ch;
            }
        }

        /**
         * The impostor connects to the victim's listener: its REQ and RTU are valid or the input's. The
         * victim accepts as a transport does: a connector whose handshake fails is dropped, and the
         * listener takes the next one. When the impostor's handshake cannot have succeeded, a genuine
         * connector comes next and must get through.
         */
        private SocketChannel impostorConnects() throws Exception {
            boolean rawReq = (mode & 2) != 0;
            boolean rawRtu = (mode & 4) != 0;
            byte[] req = rawReq ? in.bytes(in.u16()) : CmMessage.endpoint(CmMessage.REQ, impostor.endpoint(impostorQp, ConnectionParameters.defaults()));
            byte[] rtu = rawRtu ? in.bytes(in.u16()) : CmMessage.rtu();
            List<IOException> refused = java.util.Collections.synchronizedList(new ArrayList<>());
            try (ConnectionListener l = victim.listen(TestFabric.loopback())) {
                CompletableFuture<Connection> accepted = async("peer-fuzz-accept", () -> {
                    while (true) {
                        ConnectRequest r;
                        try {
                            r = l.accept(STEP);
                        } catch (IOException e) {
                            throw new UncheckedIOException(e);
                        }
                        if (r == null) {
                            throw new AssertionError("the listener took no connection within " + STEP + " (refused before: " + refused + ")");
                        }
                        try {
                            return r.accept(qp, ConnectionParameters.defaults());
                        } catch (IOException e) {
                            refused.add(e);
                        }
                    }
                });
                SocketChannel ch = SocketChannel.open(l.localAddress());
                ch.socket().setSoTimeout((int) STEP.toMillis());
                CmMessage.write(ch, req);
                if (rawReq) {
                    // the input's REQ may be cut short: tell the victim there is no more
                    ch.shutdownOutput();
                }
                CmMessage.Received rep;
                try {
                    rep = CmMessage.read(new DataInputStream(ch.socket().getInputStream()), "victim");
                } catch (IOException e) {
                    rep = null;
                }
                boolean gotRep = rep != null && rep.kind() == CmMessage.REP;
                if (gotRep && !rawReq) {
                    CmMessage.write(ch, rtu);
                    if (rawRtu) {
                        ch.shutdownOutput();
                    }
                }
                boolean succeeds = gotRep && !rawReq && isRtu(rtu);
                if (!succeeds) {
                    ch.close();
                    // the impostor was refused: the listener must still take a genuine connector
                    RdmaDevice genuine = fabric.device();
                    QueuePair gqp = genuine.allocateProtectionDomain().createQueuePair(QueuePairConfig.of(genuine.createCompletionQueue(4), 4, 4));
                    genuine.connect(l.localAddress(), gqp, ConnectionParameters.defaults(), STEP);
                }
                Connection c = accepted.get(STEP.toSeconds() * 2, TimeUnit.SECONDS);
                assertThat(c).isNotNull();
                for (IOException e : refused) {
                    assertThat(e.getMessage()).as("a failed handshake names the peer").contains("127.0.0.1");
                }
                if (!succeeds) {
                    // refused by the listener (which logs it) or by the accept (in refused)
                    return null;
                }
                assertThat(refused).as("a valid handshake failed").isEmpty();
                if (rawRtu || rawReq) {
                    // the handshake completed on an input's message: a well-formed one, then
                    ch.close();
                    return null;
                }
                return ch;
            }
        }

        /** Whether {@code b} starts with a well-formed RTU (the victim then completes the handshake). */
        private static boolean isRtu(byte[] b) {
            try {
                return CmMessage.read(new DataInputStream(new java.io.ByteArrayInputStream(b)), "input").kind() == CmMessage.RTU;
            } catch (IOException e) {
                return false;
            }
        }

        /**
         * Runs {@code task} on a thread of its own (not a shared pool, where a task that a failed input
         * left blocked would starve the next inputs'); the thread is interrupted when the input ends.
         */
        private <T> CompletableFuture<T> async(String name, java.util.function.Supplier<T> task) {
            CompletableFuture<T> f = new CompletableFuture<>();
            threads.add(Thread.ofPlatform().daemon().name(name).start(() -> {
                try {
                    f.complete(task.get());
                } catch (Throwable t) {
                    f.completeExceptionally(t);
                }
            }));
            return f;
        }

        /** Reads and drops what the victim sends, as a peer's receive thread always reads. */
        private CompletableFuture<Void> drain(SocketChannel ch) {
            return async("peer-fuzz-drain", () -> {
                ByteBuffer b = ByteBuffer.allocate(64 * 1024);
                try {
                    while (ch.read(b.clear()) >= 0) {
                        // dropped
                    }
                } catch (IOException e) {
                    // closed by this side
                }
                return null;
            });
        }

        /** One operation; false when the socket is gone (the victim closed it). */
        private boolean operation(SocketChannel ch) throws IOException {
            int op = in.u8() % OPS;
            try {
                switch (op) {
                    case OP_RAW -> write(ch, in.bytes(in.u16() % 4096));
                    case OP_MSG -> {
                        int code = in.u8() % 4;
                        int psn = in.u32();
                        int imm = in.u32();
                        int lie = in.u8();
                        byte[] payload = in.bytes(in.u16() % 8192);
                        long length = declared(lie, payload.length, victim.settings().maxMessageSize());
                        write(ch, Frame.encode(Frame.MSG, code, 0, psn, imm, length, null));
                        write(ch, payload);
                    }
                    case OP_ACK, OP_RNR -> write(ch, Frame.encode(op == OP_ACK ? Frame.ACK : Frame.RNR_WAIT, 0, 0, in.u32(), 0, 0, null));
                    case OP_NAK -> {
                        int psn = in.u32();
                        int code = in.u8();
                        int lie = in.u8();
                        byte[] detail = in.bytes(in.u16() % 8192);
                        write(ch, Frame.encode(Frame.NAK, code, 0, psn, 0, declared(lie, detail.length, Frame.MAX_DETAIL), null));
                        write(ch, detail);
                    }
                    case OP_ACCESS, OP_DOWN -> {
                        int flags = in.u8();
                        int lie = in.u8();
                        byte[] detail = in.bytes(in.u16() % 8192);
                        write(ch, Frame.encode(op == OP_ACCESS ? Frame.ACCESS_VIOLATION : Frame.QP_DOWN, 0, flags, 0, 0,
                                declared(lie, detail.length, Frame.MAX_DETAIL), null));
                        write(ch, detail);
                    }
                    case OP_TABLE -> {
                        long offset = Integer.toUnsignedLong(in.u32());
                        byte[] b = in.bytes(in.u8());
                        try (FileChannel f = FileChannel.open(impostor.table().file(), StandardOpenOption.WRITE)) {
                            long size = f.size();
                            if (size > 0) {
                                f.write(ByteBuffer.wrap(b), offset % size);
                            }
                        }
                    }
                    case OP_SEND -> {
                        int length = 1 + in.u16() % 4096;
                        if (sends < MAX_SENDS) {
                            post(new SendWorkRequest.Send(nextWrId, List.of(ScatterGatherElement.of(localMr, 0, length)), true));
                            sends++;
                        }
                    }
                    case OP_WRITE -> {
                        long offset = Integer.toUnsignedLong(in.u32()) % (REGION_BYTES + 8192) - 4096;
                        int length = 1 + in.u16() % 8192;
                        boolean wrongKey = (in.u8() & 1) != 0;
                        if (sends < MAX_SENDS) {
                            post(new SendWorkRequest.RdmaWrite(nextWrId, List.of(ScatterGatherElement.of(localMr, 0, length)), target.address() + offset,
                                    wrongKey ? target.rkey() ^ 0x100 : target.rkey(), true));
                            sends++;
                        }
                    }
                    case OP_RECV -> postRecv();
                    default -> throw new IllegalStateException("operation " + op);
                }
            } catch (IOException e) {
                // the victim closed the connection (it took the link down): what is left of the input cannot reach it
                return false;
            }
            return true;
        }

        private static void write(SocketChannel ch, byte[] b) throws IOException {
            ByteBuffer buf = ByteBuffer.wrap(b);
            while (buf.hasRemaining()) {
                ch.write(buf);
            }
        }

        private void post(SendWorkRequest wr) {
            try {
                qp.postSend(wr);
                posted.put(wr.wrId(), 0);
            } catch (VerbsException e) {
                // refused at once (a full queue): no completion will come for it
                assertThat(e.reason()).as("post_send refused: %s", e.getMessage()).isEqualTo(VerbsException.Reason.QUEUE_FULL);
            }
            nextWrId++;
        }

        private void postRecv() {
            if (recvs >= MAX_RECVS) {
                return;
            }
            int offset = 4096 + recvs * RECV_BYTES;
            long id = nextWrId++;
            try {
                qp.postRecv(ReceiveWorkRequest.of(id, ScatterGatherElement.of(localMr, offset, RECV_BYTES)));
                posted.put(id, 0);
                recvBuffers.add(offset);
            } catch (VerbsException e) {
                assertThat(e.reason()).as("post_recv refused: %s", e.getMessage()).isEqualTo(VerbsException.Reason.QUEUE_FULL);
            }
            recvs++;
        }

        private Map<WcStatus, Integer> collectCompletions() throws InterruptedException {
            Map<WcStatus, Integer> statuses = new java.util.EnumMap<>(WcStatus.class);
            long deadline = System.nanoTime() + STEP.toNanos();
            while (posted.containsValue(0)) {
                WorkCompletion wc = cq.take(Duration.ofMillis(100));
                if (wc == null) {
                    assertThat(System.nanoTime() - deadline).as("requests never completed: %s", posted).isNegative();
                    continue;
                }
                Integer seen = posted.get(wc.wrId());
                assertThat(seen).as("a completion for wr_id %d, which was never posted: %s", wc.wrId(), wc).isNotNull();
                assertThat(seen).as("a second completion for wr_id %d: %s", wc.wrId(), wc).isZero();
                posted.put(wc.wrId(), 1);
                statuses.merge(wc.status(), 1, Integer::sum);
            }
            assertThat(cq.poll()).as("a completion after every request had one").isNull();
            return statuses;
        }

        private void checkCanaries() {
            for (int i = 0; i < LOCAL_BYTES; i++) {
                int inBuffer = i >= 4096 ? 4096 + (i - 4096) / RECV_BYTES * RECV_BYTES : -1;
                if (!recvBuffers.contains(inBuffer)) {
                    assertThat(local.get(ValueLayout.JAVA_BYTE, i)).as("the victim's byte %d, outside its receives' buffers", i).isEqualTo(CANARY);
                }
            }
            MemorySegment s = shared.segment();
            for (int i = 0; i < SHARED_BYTES; i++) {
                if (i < REGION_FROM || i >= REGION_FROM + REGION_BYTES) {
                    assertThat(s.get(ValueLayout.JAVA_BYTE, i)).as("the impostor's byte %d, outside its region", i).isEqualTo(CANARY);
                }
            }
        }
    }
}
