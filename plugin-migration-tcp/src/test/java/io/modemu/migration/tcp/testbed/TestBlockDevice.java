package io.modemu.migration.tcp.testbed;

import io.modemu.aio.AioContext;
import io.modemu.aio.EventNotifier;
import io.modemu.block.BlockBackend;
import io.modemu.block.BlockDevOps;
import io.modemu.device.Device;
import io.modemu.device.DeviceType;
import io.modemu.device.MmioDevice;
import io.modemu.machine.GuestMemory;
import io.modemu.machine.GuestMemoryException;
import io.modemu.machine.IrqLine;
import io.modemu.machine.Machine;
import io.modemu.machine.MmioBus;
import io.modemu.machine.RunState;
import io.modemu.machine.VmStateHandler;
import io.modemu.migration.Migratable;
import io.modemu.migration.StateReader;
import io.modemu.migration.StateWriter;
import io.modemu.options.Options;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * A block device for the migration tests that behaves like a virtio-blk dataplane, without virtio's
 * bulk: the guest puts requests in a ring in guest RAM and rings a doorbell (MMIO); the device takes
 * them on its IOThread and submits them through a {@link BlockBackend}; completions write the status
 * into guest RAM (DMA, dirty-tracked) and raise an interrupt. On VM stop it stops taking requests on
 * the IOThread, then drains and moves the backend to the main loop; on start it moves it back. Its
 * consumer index travels in a migration section, so requests the guest queued but the source never
 * took are taken by the destination.
 *
 * <p>Ring at {@code RING} (guest-physical): {@code u16 avail} (guest), 6 bytes unused, then
 * {@code size} entries of 32 bytes: {@code u8 op} (1 write, 2 read), {@code u8 status} (0 pending,
 * 1 done, 2 error), {@code u16 -}, {@code u32 seq}, {@code u64 disk offset}, {@code u64 buffer},
 * {@code u32 length}, {@code u32 done-seq} (the device copies {@code seq} there on completion).
 */
public final class TestBlockDevice implements Device, MmioDevice, Migratable {
    public static final String TYPE_NAME = "test-blk";
    public static final int REG_RING_LO = 0x00;
    public static final int REG_RING_HI = 0x04;
    public static final int REG_RING_SIZE = 0x08;
    public static final int REG_NOTIFY = 0x10;
    public static final int REG_IRQ_ACK = 0x14;
    public static final int REG_MAGIC = 0x20;
    public static final long MAGIC = 0x4b4c4254L;
    public static final int ENTRY = 32;
    public static final int OP_WRITE = 1;
    public static final int OP_READ = 2;

    /** The device type, for {@link io.modemu.plugin.Contributions}. Options: {@code drive}, {@code iothread}. */
    public static final DeviceType TYPE = new DeviceType() {
        @Override
        public String name() {
            return TYPE_NAME;
        }

        @Override
        public String description() {
            return "test block device with an IOThread dataplane (migration tests)";
        }

        @Override
        public Device create(Machine machine, String id, Options options) {
            BlockBackend be = machine.blockBackend(options.string("drive"));
            String io = options.string("iothread", null);
            AioContext home = io == null ? machine.mainLoop() : machine.iothread(io);
            return new TestBlockDevice(machine, id, be, home);
        }
    };

    private final Machine machine;
    private final String id;
    private final BlockBackend backend;
    private final AioContext home;
    private final GuestMemory memory;
    private final EventNotifier notifier;
    private final IrqLine irq;
    private final AtomicLong completions = new AtomicLong();
    private final AtomicLong submissions = new AtomicLong();
    private volatile long ringGpa;
    private volatile int ringSize;
    private volatile int nextAvail;
    private volatile boolean started;
    private volatile int inFlightAtLastStop = -1;
    private volatile Consumer<TestBlockDevice> onStop;

    private TestBlockDevice(Machine machine, String id, BlockBackend backend, AioContext home) {
        this.machine = machine;
        this.id = id;
        this.backend = backend;
        this.home = home;
        this.memory = machine.memory();
        this.notifier = home.newEventNotifier(id + "-notify", this::process);
        MmioBus.Slot slot = machine.attachMmio(id, this);
        this.irq = slot.irq();
        backend.attach(id, new BlockDevOps() {
        });
        machine.registerState(this);
        machine.addVmStateHandler(TYPE_NAME + ":" + id, 0, new VmStateHandler() {
            @Override
            public CompletionStage<Void> stop(RunState newState) {
                return stopDataplane();
            }

            @Override
            public CompletionStage<Void> start() {
                return startDataplane();
            }
        });
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public String typeName() {
        return TYPE_NAME;
    }

    public BlockBackend backend() {
        return backend;
    }

    /** Requests completed by this device instance. */
    public long completions() {
        return completions.get();
    }

    /** Requests submitted to the backend by this device instance. */
    public long submissions() {
        return submissions.get();
    }

    /** Requests in flight on the backend when the last stop reached this device's handler (on the main loop, vCPUs already paused). */
    public int inFlightAtLastStop() {
        return inFlightAtLastStop;
    }

    /** Runs {@code hook} on the main loop each time a stop begins (a test's window into the completion of a migration). */
    public void onStop(Consumer<TestBlockDevice> hook) {
        this.onStop = hook;
    }

    // ---- VM state: runs on the main loop ----

    private CompletionStage<Void> stopDataplane() {
        machine.mainLoop().assertInThread();
        inFlightAtLastStop = backend.inFlight();
        Consumer<TestBlockDevice> hook = onStop;
        if (hook != null) {
            hook.accept(this);
        }
        // first the IOThread stops taking requests (a task there cannot race process()), then drain and move home
        return home.submit(() -> {
            started = false;
            return null;
        }).thenComposeAsync(v -> backend.setAioContext(machine.mainLoop()), machine.mainLoop());
    }

    private CompletionStage<Void> startDataplane() {
        machine.mainLoop().assertInThread();
        return backend.setAioContext(home).thenRun(() -> home.execute(() -> {
            started = true;
            // pairs with the fence in the doorbell: either the guest sees 'started' and rings, or this sees its requests
            GuestMemory.fullFence();
            process();
        }));
    }

    // ---- the dataplane: runs on the backend's context (home) ----

    private void process() {
        if (!started) {
            return;
        }
        long ring = ringGpa;
        int size = ringSize;
        if (ring == 0 || size == 0) {
            return;
        }
        int avail = memory.readU16Acquire(ring);
        while (nextAvail != avail) {
            int slot = nextAvail % size;
            nextAvail = (nextAvail + 1) & 0xffff;
            long e = ring + 8 + (long) slot * ENTRY;
            int op = memory.readU8(e);
            long seq = memory.readU32(e + 4);
            long offset = memory.readU64(e + 8);
            long buffer = memory.readU64(e + 16);
            int length = (int) memory.readU32(e + 24);
            submit(e, op, seq, offset, buffer, length);
        }
    }

    private void submit(long entry, int op, long seq, long offset, long buffer, int length) {
        MemorySegment data;
        try {
            data = memory.slice(buffer, length);
        } catch (GuestMemoryException ex) {
            complete(entry, seq, -1);
            return;
        }
        submissions.incrementAndGet();
        switch (op) {
            case OP_WRITE -> backend.write(offset, data, st -> complete(entry, seq, st));
            case OP_READ -> backend.read(offset, data, st -> {
                if (st == 0) {
                    memory.markDirty(buffer, length);
                }
                complete(entry, seq, st);
            });
            default -> complete(entry, seq, -1);
        }
    }

    private void complete(long entry, long seq, int status) {
        memory.writeU32(entry + 28, seq);
        GuestMemory.fullFence();
        memory.writeU8(entry + 1, status == 0 ? 1 : 2);
        completions.incrementAndGet();
        irq.raise();
    }

    // ---- MMIO: vCPU threads ----

    @Override
    public long mmioRead(long offset, int size) {
        return switch ((int) offset) {
            case REG_MAGIC -> MAGIC;
            case REG_RING_SIZE -> ringSize;
            default -> 0;
        };
    }

    @Override
    public void mmioWrite(long offset, int size, long value) {
        switch ((int) offset) {
            case REG_RING_LO -> ringGpa = (ringGpa & 0xffff_ffff_0000_0000L) | (value & 0xffff_ffffL);
            case REG_RING_HI -> ringGpa = (ringGpa & 0xffff_ffffL) | (value << 32);
            case REG_RING_SIZE -> {
                if (value > 0 && value <= 1024 && Long.bitCount(value) == 1) {
                    ringSize = (int) value;
                }
            }
            case REG_NOTIFY -> {
                GuestMemory.fullFence();
                if (started) {
                    notifier.signal();
                }
            }
            case REG_IRQ_ACK -> irq.lower();
            default -> {
            }
        }
    }

    // ---- migration: main loop, VM stopped and drained ----

    @Override
    public String stateName() {
        return TYPE_NAME + ":" + id;
    }

    @Override
    public int stateVersion() {
        return 1;
    }

    @Override
    public void saveState(StateWriter out) {
        out.u64(ringGpa).u32(ringSize).u16(nextAvail);
    }

    @Override
    public void loadState(StateReader in, int version) {
        long ring = in.u64("ring address");
        long size = in.u32("ring size", 0, 1024);
        int next = in.u16("next available index");
        if (size != 0 && Long.bitCount(size) != 1) {
            throw in.fail("ring size", "is " + size + ", not a power of two");
        }
        if (ring != 0 && !memory.isRam(ring, 8 + size * ENTRY)) {
            throw in.fail("ring address", String.format("0x%x does not hold a ring of %d entries in guest RAM", ring, size));
        }
        ringGpa = ring;
        ringSize = (int) size;
        nextAvail = next;
    }
}
