package io.modemu.machine;

import io.modemu.aio.AioContext;
import io.modemu.aio.EventNotifier;
import io.modemu.block.BlockBackend;
import io.modemu.block.BlockDevOps;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A minimal dataplane device for the seed's scenario, shaped like virtio-blk with iothread=: a guest
 * queues requests and kicks a notifier; the IOThread submits them to the backend; completions land
 * on the IOThread. Its VM state handler detaches from the IOThread (a bottom half there), then moves
 * the backend to the main loop (drained, transactional); start does the reverse and processes what
 * was queued meanwhile.
 */
final class TestDataplaneDevice implements BlockDevOps {
    record Request(long sector, boolean write) {
    }

    final Machine machine;
    final BlockBackend backend;
    final AioContext iothread;
    final EventNotifier kick;
    final ConcurrentLinkedQueue<Request> queue = new ConcurrentLinkedQueue<>();
    final AtomicInteger submitted = new AtomicInteger();
    final AtomicInteger completed = new AtomicInteger();
    final AtomicInteger failed = new AtomicInteger();
    final java.lang.foreign.MemorySegment buffer;
    volatile boolean dataplaneRunning;
    volatile boolean drainedBegun;

    TestDataplaneDevice(Machine machine, BlockBackend backend, AioContext iothread) {
        this.machine = machine;
        this.backend = backend;
        this.iothread = iothread;
        this.kick = iothread.newEventNotifier("test-dataplane", this::processQueue);
        this.buffer = machine.memory().slice(Machine.RAM_BASE, 4096);
        machine.onMainLoop(() -> {
            backend.attach("dataplane0", this);
            machine.addVmStateHandler("test-dataplane", 0, new VmStateHandler() {
                @Override
                public CompletionStage<Void> stop(RunState s) {
                    return stopDataplane();
                }

                @Override
                public CompletionStage<Void> start() {
                    return startDataplane();
                }
            });
            return null;
        });
    }

    /** Guest side: queue a request and kick. Any thread. */
    void guestSubmit(Request r) {
        queue.add(r);
        kick.signal();
    }

    private void processQueue() {
        iothread.assertInThread();
        if (!dataplaneRunning) {
            return;
        }
        Request r;
        while ((r = queue.poll()) != null) {
            submitted.incrementAndGet();
            java.lang.foreign.MemorySegment buf = buffer;
            if (r.write()) {
                backend.write(r.sector() * 512, buf.asSlice(0, 512), this::done);
            } else {
                backend.read(r.sector() * 512, buf.asSlice(0, 512), this::done);
            }
        }
    }

    private void done(int status) {
        backend.context().assertInThread();
        if (status < 0) {
            failed.incrementAndGet();
        }
        completed.incrementAndGet();
    }

    /** Main loop: detach on the IOThread (asynchronously), then move the backend home. */
    CompletionStage<Void> stopDataplane() {
        machine.mainLoop().assertInThread();
        if (!dataplaneRunning) {
            return CompletableFuture.completedFuture(null);
        }
        return iothread.submit(() -> {
            dataplaneRunning = false;
            return null;
        }).thenComposeAsync(v -> backend.setAioContext(machine.mainLoop()), machine.mainLoop());
    }

    /** Main loop: move the backend to the IOThread, then attach and process what the guest queued meanwhile. */
    CompletionStage<Void> startDataplane() {
        machine.mainLoop().assertInThread();
        return backend.setAioContext(iothread).thenCompose(v -> iothread.submit(() -> {
            dataplaneRunning = true;
            processQueue();
            return null;
        }));
    }

    @Override
    public void drainedBegin() {
        drainedBegun = true;
    }

    @Override
    public void drainedEnd() {
        drainedBegun = false;
    }
}
