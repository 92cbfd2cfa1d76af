package io.modemu.block;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.aio.AioContext;
import io.modemu.aio.DeterministicScheduler;
import io.modemu.aio.WrongThreadException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** BlockBackend: requests, completions on the backend's context, drained sections and transactional moves. */
class BlockBackendTest {
    DeterministicScheduler sched = new DeterministicScheduler(11);
    AioContext main = new AioContext("main", sched);
    AioContext io = new AioContext("io0", sched);
    MemoryBlockNode node = new MemoryBlockNode(1 << 20, false, 100_000);
    BlockBackend be;
    MemorySegment buf = Arena.ofAuto().allocate(4096);
    final List<String> events = new ArrayList<>();

    @BeforeEach
    void setUp() {
        be = new BlockBackend("d0", node, main, false);
    }

    @AfterEach
    void tearDown() {
        main.close();
        io.close();
    }

    private <T> T onMain(java.util.concurrent.Callable<T> c) {
        return sched.await(main.submit(c));
    }

    private int request(AioContext from, java.util.function.Consumer<BlockCompletion> r) {
        CompletableFuture<Integer> f = new CompletableFuture<>();
        from.execute(() -> r.accept(status -> {
            assertThat(be.context().inThread()).as("completion on the backend's context").isTrue();
            f.complete(status);
        }));
        return sched.await(f);
    }

    @Test
    void writesAndReadsGoStraightBetweenTheBufferAndTheNode() {
        buf.fill((byte) 0x5a);
        assertThat(request(main, cb -> be.write(8192, buf, cb))).isZero();
        assertThat(node.data().get(ValueLayout.JAVA_BYTE, 8192 + 4095)).isEqualTo((byte) 0x5a);
        MemorySegment back = Arena.ofAuto().allocate(4096);
        assertThat(request(main, cb -> be.read(8192, back, cb))).isZero();
        assertThat(back.mismatch(buf)).isEqualTo(-1);
        assertThat(request(main, cb -> be.writeZeroes(8192, 4096, cb))).isZero();
        assertThat(node.data().get(ValueLayout.JAVA_BYTE, 8192)).isZero();
        assertThat(request(main, cb -> be.discard(0, 4096, cb))).isZero();
        assertThat(request(main, be::flush)).isZero();
        assertThat(be.stats().writeOps()).isEqualTo(1);
        assertThat(be.stats().readBytes()).isEqualTo(4096);
        assertThat(be.stats().writeZeroesOps()).isEqualTo(1);
    }

    @Test
    void requestsOutsideTheDiskFailWithEioAndWritesToAReadOnlyDiskWithEperm() {
        assertThat(request(main, cb -> be.read((1 << 20) - 512, buf, cb))).isEqualTo(-Errno.EIO);
        assertThat(request(main, cb -> be.read(-4096, buf, cb))).isEqualTo(-Errno.EIO);
        assertThat(request(main, cb -> be.discard(Long.MAX_VALUE - 10, 100, cb))).isEqualTo(-Errno.EIO);
        BlockBackend ro = new BlockBackend("ro", node, main, true);
        CompletableFuture<Integer> f = new CompletableFuture<>();
        main.execute(() -> ro.write(0, buf, f::complete));
        assertThat(sched.await(f)).isEqualTo(-Errno.EPERM);
        assertThat(node.started.get()).as("nothing reached the node").isZero();
    }

    @Test
    void driverErrorsCarryTheirErrnoAndAreCounted() {
        node.failNext(1, Errno.ENOSPC);
        assertThat(request(main, cb -> be.write(0, buf, cb))).isEqualTo(-Errno.ENOSPC);
        assertThat(be.stats().failedOps()).isEqualTo(1);
    }

    @Test
    void aRequestSubmittedFromAnotherContextIsForwardedAndCompletesOnTheBackendsContext() {
        onMain(() -> be.setAioContext(io)).toCompletableFuture();
        sched.runUntilIdle(100_000);
        assertThat(be.context()).isSameAs(io);
        assertThat(request(main, cb -> be.read(0, buf, cb))).isZero();
    }

    @Test
    void drainedBeginCompletesOnlyWhenNothingIsInFlightAndParksNewRequestsUntilTheEnd() {
        List<Integer> done = new ArrayList<>();
        main.execute(() -> {
            for (int i = 0; i < 32; i++) {
                be.read(i * 4096L, buf, done::add);
            }
        });
        sched.runUntil(() -> be.inFlight() == 32, 1_000);
        CompletableFuture<Void> drained = main.submitAsync(() -> be.drainedBegin().toCompletableFuture());
        sched.await(drained);
        assertThat(done).hasSize(32);
        assertThat(be.inFlight()).isZero();
        // a request that arrives inside the section waits, then runs after drainedEnd
        main.execute(() -> be.read(0, buf, done::add));
        sched.runUntilIdle(100_000);
        assertThat(done).hasSize(32);
        assertThat(be.parkedTotal()).isEqualTo(1);
        main.execute(be::drainedEnd);
        sched.runUntilIdle(100_000);
        assertThat(done).hasSize(33).allMatch(s -> s == 0);
    }

    @Test
    void theDeviceHearsAboutDrainedSections() {
        onMain(() -> {
            be.attach("dev0", new BlockDevOps() {
                @Override
                public void drainedBegin() {
                    events.add("begin");
                }

                @Override
                public void drainedEnd() {
                    events.add("end");
                }
            });
            return null;
        });
        sched.await(main.submitAsync(() -> be.drain().toCompletableFuture()));
        assertThat(events).containsExactly("begin", "end");
        assertThatThrownBy(() -> onMain(() -> {
            be.attach("dev1", new BlockDevOps() { });
            return null;
        })).hasMessageContaining("drive 'd0' is already in use by device 'dev0'");
    }

    @Test
    void setAioContextMovesOnlyWhenDrainedAndAVetoLeavesItUnmoved() {
        List<Integer> done = new ArrayList<>();
        main.execute(() -> {
            for (int i = 0; i < 8; i++) {
                be.read(0, buf, done::add);
            }
        });
        sched.runUntil(() -> be.inFlight() == 8, 1_000);
        CompletableFuture<Void> move = main.submitAsync(() -> be.setAioContext(io).toCompletableFuture().thenRun(() -> {
            events.add("moved with " + be.inFlight() + " in flight, " + done.size() + " done");
        }));
        sched.await(move);
        assertThat(events).containsExactly("moved with 0 in flight, 8 done");
        assertThat(be.context()).isSameAs(io);

        onMain(() -> {
            be.attach("stubborn", new BlockDevOps() {
                @Override
                public void prepareAioContextChange(AioContext target) {
                    throw new IllegalStateException("device 'stubborn' cannot move to " + target.name());
                }
            });
            return null;
        });
        CompletableFuture<Void> vetoed = main.submitAsync(() -> be.setAioContext(main).toCompletableFuture());
        assertThatThrownBy(() -> sched.await(vetoed)).cause().hasMessage("device 'stubborn' cannot move to main");
        assertThat(be.context()).isSameAs(io);
        assertThat(be.isQuiesced()).isFalse();
    }

    @Test
    void drainedSectionsAndMovesRunOnTheMainLoopOnly() {
        CompletableFuture<CompletionStage<Void>> f = io.submit(() -> be.setAioContext(io));
        assertThatThrownBy(() -> sched.await(f)).cause().isInstanceOf(WrongThreadException.class)
                .hasMessageContaining("must run in AioContext 'main', called from simulated context 'io0'");
    }

    @Test
    void aCompletionCallbackThatThrowsDoesNotLeakAnInFlightRequest() {
        main.execute(() -> be.read(0, buf, s -> {
            throw new IllegalStateException("device bug");
        }));
        sched.runUntilIdle(100_000);
        assertThat(be.inFlight()).isZero();
    }

    /** A node with a host bug: its size throws once {@code broken} is set, or its reads complete and then throw, or complete twice. */
    private static final class BuggyNode implements BlockNode {
        volatile boolean sizeThrows;
        volatile boolean completeThenThrow;
        volatile boolean completeTwice;

        @Override
        public String describe() {
            return "buggy";
        }

        @Override
        public long size() {
            if (sizeThrows) {
                throw new IllegalStateException("size of a node that lost its image");
            }
            return 1 << 20;
        }

        @Override
        public boolean isReadOnly() {
            return false;
        }

        @Override
        public void read(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
            done.complete(0);
            if (completeTwice) {
                done.complete(-Errno.EIO);
            }
            if (completeThenThrow) {
                throw new IllegalStateException("threw after completing");
            }
        }

        @Override
        public void write(AioContext ctx, long offset, MemorySegment buffer, BlockCompletion done) {
            done.complete(0);
        }

        @Override
        public void flush(AioContext ctx, BlockCompletion done) {
            done.complete(0);
        }

        @Override
        public void discard(AioContext ctx, long offset, long length, BlockCompletion done) {
            done.complete(0);
        }

        @Override
        public void writeZeroes(AioContext ctx, long offset, long length, BlockCompletion done) {
            done.complete(0);
        }

        @Override
        public void close() {
        }
    }

    @Test
    void aHostBugWhileSubmittingFailsTheRequestWithEioAndLeaksNoInFlightCount() {
        BuggyNode buggy = new BuggyNode();
        BlockBackend b = new BlockBackend("d1", buggy, main, false);
        buggy.sizeThrows = true;
        List<Integer> done = new ArrayList<>();
        main.execute(() -> b.read(0, buf, done::add));
        sched.runUntilIdle(100_000);
        assertThat(done).containsExactly(-Errno.EIO);
        assertThat(b.inFlight()).isZero();
        assertThat(b.stats().failedOps()).isEqualTo(1);
        assertThat(main.uncaughtErrors()).as("nothing escaped into the loop").isZero();
        sched.await(main.submitAsync(() -> b.drain().toCompletableFuture()));
    }

    @Test
    void aDriverThatCompletesAndThenThrowsOrCompletesTwiceIsCountedOnce() {
        BuggyNode buggy = new BuggyNode();
        BlockBackend b = new BlockBackend("d1", buggy, main, false);
        List<Integer> done = new ArrayList<>();
        buggy.completeThenThrow = true;
        main.execute(() -> b.read(0, buf, done::add));
        sched.runUntilIdle(100_000);
        buggy.completeThenThrow = false;
        buggy.completeTwice = true;
        main.execute(() -> b.read(0, buf, done::add));
        sched.runUntilIdle(100_000);
        assertThat(done).containsExactly(0, 0);
        assertThat(b.inFlight()).isZero();
        assertThat(b.stats().readOps()).isEqualTo(2);
        sched.await(main.submitAsync(() -> b.drain().toCompletableFuture()));
    }
}
