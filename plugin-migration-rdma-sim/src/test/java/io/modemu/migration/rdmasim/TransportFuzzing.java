package io.modemu.migration.rdmasim;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.machine.RamBlock;
import io.modemu.migration.rdmasim.verbs.FabricLogs;
import io.modemu.migration.rdmasim.verbs.FuzzInput;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The fuzz target for the transport's own messages over the fabric (docs/fuzzing.md): stream
 * messages, chunk registration requests and answers, goodbyes, and messages of any type, length and
 * content, sent by either end of a real source / destination pair of connections, between its
 * one-sided RAM writes. Each end's handler reads them as it would a peer's.
 *
 * <p>Input: a mode byte (bit 0: pin-all), then operations until the input ends (at most
 * {@link #MAX_OPS}), each a selector byte and its fields: a message of the input's bytes from the
 * source, a stream message from the source, a registration request with the input's fields from the
 * source, a message of the input's bytes from the destination, a registration answer with the input's
 * fields from the destination, and a RAM write of the source's (written one-sided, then flushed).
 * Then the source closes.
 *
 * <p>Properties, for every input: the destination reads back exactly the stream messages' bytes, in
 * order, then the end of the stream (-1), unless a message broke the protocol, in which case a read
 * fails with an {@link IOException} naming the peer and what came before is still exact; a source
 * write or flush fails, if it does, with an {@code IOException} naming the peer; nothing hangs; the
 * destination exposes no more than its guest RAM and withdraws it; both ends close; nothing of the
 * plugin logs an unforeseen exception.
 */
final class TransportFuzzing {
    static final int MAX_OPS = 32;
    private static final Duration STEP = Duration.ofSeconds(20);
    private static final long RAM = 8L << 20;

    static final int OP_SOURCE_RAW = 0;
    static final int OP_SOURCE_STREAM = 1;
    static final int OP_SOURCE_REGISTER = 2;
    static final int OP_DESTINATION_RAW = 3;
    static final int OP_DESTINATION_REGISTERED = 4;
    static final int OP_WRITE_RAM = 5;
    static final int OPS = 6;

    private TransportFuzzing() {
    }

    /** Builds inputs; the layout is {@link #run}'s. */
    static final class Writer {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Writer(int mode) {
            out.write(mode);
        }

        private Writer u8(int v) {
            out.write(v);
            return this;
        }

        private Writer u16(int v) {
            return u8(v >>> 8).u8(v);
        }

        private Writer u32(int v) {
            return u16(v >>> 16).u16(v);
        }

        private Writer bytes(byte[] b) {
            out.writeBytes(b);
            return this;
        }

        Writer sourceRaw(byte[] message) {
            return u8(OP_SOURCE_RAW).u16(message.length).bytes(message);
        }

        Writer sourceStream(byte[] payload) {
            return u8(OP_SOURCE_STREAM).u16(payload.length).bytes(payload);
        }

        Writer sourceRegister(int block, int first, int count) {
            return u8(OP_SOURCE_REGISTER).u32(block).u32(first).u32(count);
        }

        Writer destinationRaw(byte[] message) {
            return u8(OP_DESTINATION_RAW).u16(message.length).bytes(message);
        }

        Writer destinationRegistered(int block, int first, int count, byte[] rest) {
            return u8(OP_DESTINATION_REGISTERED).u32(block).u32(first).u32(count).u16(rest.length).bytes(rest);
        }

        Writer writeRam(int page, int pages) {
            return u8(OP_WRITE_RAM).u32(page).u8(pages);
        }

        /** An operation's bytes alone (no mode byte): for generators that assemble inputs. */
        byte[] op() {
            byte[] b = out.toByteArray();
            return Arrays.copyOfRange(b, 1, b.length);
        }

        byte[] toBytes() {
            return out.toByteArray();
        }
    }

    /** What one input did: the stream bytes read, and how the destination's reading ended. */
    record Outcome(byte[] read, String readFailure, String sourceFailure) {
    }

    static Outcome run(byte[] input) {
        Thread.interrupted();
        FabricLogs.capture();
        FuzzInput in = new FuzzInput(input);
        int mode = in.u8();
        Path dir = null;
        Arena arena = Arena.ofShared();
        RdmaSimAcceptor acceptor = null;
        RdmaSimConnection source = null;
        RdmaSimConnection destination = null;
        try {
            dir = Files.createTempDirectory(Path.of("/dev/shm"), "rdmasim-transport-fuzz-");
            acceptor = RdmaSimAcceptor.listen(RdmaSimAddress.parse("127.0.0.1:0,shm=" + dir), STEP);
            RdmaSimAcceptor a = acceptor;
            CompletableFuture<RdmaSimConnection> accepted = new CompletableFuture<>();
            Thread.ofPlatform().daemon().name("transport-fuzz-accept").start(() -> {
                try {
                    accepted.complete(a.accept(STEP));
                } catch (Throwable t) {
                    accepted.completeExceptionally(t);
                }
            });
            source = RdmaSimConnection.connect(RdmaSimAddress.parse(acceptor.address() + ",shm=" + dir + ((mode & 1) != 0 ? ",pin-all=on" : "")),
                    STEP, STEP);
            destination = accepted.get(STEP.toSeconds(), TimeUnit.SECONDS);
            MemorySegment src = arena.allocate(RAM, 4096);
            List<RamBlock> dst = List.of(RdmaSimFixture.fileBackedRam("ram0", 0x8000_0000L, dir.resolve("dst.ram"), RAM, arena));
            source.openRam(List.of(new RamBlock("ram0", 0x8000_0000L, src, null)), destination.exposeRam(dst));
            Outcome o = play(in, source, destination, src);
            long[] regions = destination.ramRegions();
            assertThat(regions[1]).as("bytes of guest RAM exposed").isLessThanOrEqualTo(RAM);
            destination.withdrawRam();
            assertThat(destination.ramRegions()[0]).as("regions left after the withdrawal").isZero();
            return o;
        } catch (AssertionError e) {
            throw e;
        } catch (Exception e) {
            throw new AssertionError("the harness failed: " + e, e);
        } finally {
            closeWithin(source);
            closeWithin(destination);
            if (acceptor != null) {
                try {
                    acceptor.close();
                } catch (IOException e) {
                    // closing anyway
                }
            }
            arena.close();
            if (dir != null) {
                try (Stream<Path> files = Files.list(dir)) {
                    for (Path p : files.toList()) {
                        Files.deleteIfExists(p);
                    }
                    Files.deleteIfExists(dir);
                } catch (IOException e) {
                    // left for the next cleanup
                }
            }
            assertThat(FabricLogs.unforeseen()).as("errors the plugin did not foresee (logged with a stack trace)").isEmpty();
        }
    }

    private static void closeWithin(RdmaSimConnection c) {
        if (c == null) {
            return;
        }
        CompletableFuture<Void> done = CompletableFuture.runAsync(c::close, r -> Thread.ofPlatform().daemon().name("transport-fuzz-close").start(r));
        try {
            done.get(STEP.toSeconds(), TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("closing " + c + " did not end within " + STEP + ": " + e, e);
        }
    }

    private static Outcome play(FuzzInput in, RdmaSimConnection source, RdmaSimConnection destination, MemorySegment src) throws Exception {
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        boolean broken = false;
        String sourceFailure = null;
        for (int n = 0; n < MAX_OPS && !in.atEnd(); n++) {
            int op = in.u8() % OPS;
            try {
                switch (op) {
                    case OP_SOURCE_RAW -> {
                        byte[] m = in.bytes(in.u16() % 2048);
                        source.channel().sendMessage(m);
                        if (m.length > 0 && m[0] == ControlChannel.MSG_STREAM) {
                            stream.write(m, 1, m.length - 1);
                        } else {
                            // anything else from a source is not a stream byte: it may break the protocol
                            broken = true;
                        }
                    }
                    case OP_SOURCE_STREAM -> {
                        byte[] p = in.bytes(in.u16() % 2048);
                        source.channel().sendControl(ControlChannel.MSG_STREAM, p);
                        stream.writeBytes(p);
                    }
                    case OP_SOURCE_REGISTER -> {
                        ByteBuffer b = ByteBuffer.allocate(12).putInt(in.u32()).putInt(in.u32()).putInt(in.u32());
                        source.channel().sendControl(ControlChannel.MSG_REGISTER, b.array());
                        // a request the source's importer did not make: its answer is one the source never asked for
                        broken = true;
                    }
                    case OP_DESTINATION_RAW -> {
                        destination.channel().sendMessage(in.bytes(in.u16() % 2048));
                        broken = true;
                    }
                    case OP_DESTINATION_REGISTERED -> {
                        int block = in.u32();
                        int first = in.u32();
                        int count = in.u32();
                        byte[] rest = in.bytes(in.u16() % 2048);
                        ByteBuffer b = ByteBuffer.allocate(12 + rest.length).putInt(block).putInt(first).putInt(count).put(rest);
                        destination.channel().sendControl(ControlChannel.MSG_REGISTERED, b.array());
                        broken = true;
                    }
                    case OP_WRITE_RAM -> {
                        long page = Integer.toUnsignedLong(in.u32()) % (RAM >>> 12);
                        long pages = Math.min(1 + in.u8() % 64, (RAM >>> 12) - page);
                        src.asSlice(page << 12, pages << 12).fill((byte) (page + 1));
                        source.writeRam(0, page << 12, pages << 12);
                        source.flushRam();
                    }
                    default -> throw new IllegalStateException("operation " + op);
                }
            } catch (IOException e) {
                assertThat(e.getMessage()).as("a failure of the source's names the peer").contains("127.0.0.1");
                sourceFailure = e.getMessage();
                break;
            }
        }
        source.close();
        byte[] expected = stream.toByteArray();
        ByteArrayOutputStream read = new ByteArrayOutputStream();
        ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
        String readFailure = null;
        while (true) {
            int k;
            try {
                k = destination.read(buf.clear(), STEP);
            } catch (java.net.SocketTimeoutException e) {
                throw new AssertionError("the destination's read neither ended nor failed within " + STEP + " (" + read.size() + " of "
                        + expected.length + " stream bytes read)");
            } catch (IOException e) {
                assertThat(e.getMessage()).as("a failed read names the peer").contains("127.0.0.1");
                readFailure = e.getMessage();
                break;
            }
            if (k < 0) {
                break;
            }
            read.write(buf.array(), 0, k);
        }
        byte[] got = read.toByteArray();
        assertThat(got.length).as("stream bytes read, of %d sent", expected.length).isLessThanOrEqualTo(expected.length);
        assertThat(Arrays.equals(got, 0, got.length, expected, 0, got.length)).as("the stream bytes read are the ones sent, in order").isTrue();
        if (readFailure == null && !broken && sourceFailure == null) {
            assertThat(got.length).as("an orderly end after every stream byte").isEqualTo(expected.length);
        }
        return new Outcome(got, readFailure, sourceFailure);
    }
}
