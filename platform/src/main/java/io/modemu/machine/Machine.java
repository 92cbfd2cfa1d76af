package io.modemu.machine;

import io.modemu.aio.AioContext;
import io.modemu.aio.LoopDriver;
import io.modemu.aio.ThreadLoopDriver;
import io.modemu.block.BlockBackend;
import io.modemu.block.BlockDriver;
import io.modemu.block.BlockNode;
import io.modemu.block.Errno;
import io.modemu.device.Device;
import io.modemu.device.DeviceType;
import io.modemu.device.MmioDevice;
import io.modemu.guest.GuestProgram;
import io.modemu.guest.GuestTask;
import io.modemu.migration.Migratable;
import io.modemu.options.ConfigurationException;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A virtual machine laid out like QEMU's riscv64 {@code virt} board: RAM from 0x8000_0000, eight
 * virtio-mmio slots from 0x1000_1000, a main loop, named IOThreads, vCPUs, block backends, devices
 * and a run state.
 *
 * <h2>Threads</h2>
 * <ul>
 * <li>Run-state changes, VM change-state handlers, device creation and removal, and moves of block
 * backends between contexts run on the main loop ({@link #mainLoop()}).</li>
 * <li>{@link #vmStop} and {@link #vmStart} may be called from any thread: they queue the change on the
 * main loop and return a future; changes run one after another. A caller that is not an event loop
 * may wait on the future; an event loop must chain on it instead.</li>
 * <li>The configuration methods ({@link #addDrive}, {@link #addDevice}, {@link #loadGuest}) run their
 * work on the main loop and wait for it when called from elsewhere.</li>
 * </ul>
 *
 * <h2>Stop and start</h2>
 * Stop (of a running VM; stopping a VM that does not run changes nothing but flushes, as in QEMU,
 * unless {@link #vmStopForceState} is used): set the new run state, pause the vCPUs at a safe point, run the stop handlers in descending
 * priority (each completing before the next), flush every drive. Start: set running, run the start
 * handlers in ascending priority, resume the vCPUs.
 *
 * <p>Failures. A stop handler that fails rolls the stop back: the handlers already stopped are
 * started again, the vCPUs resume and the machine returns to its previous run state; the future fails
 * with a {@link VmStateHandlerException} naming the handler. A start handler that fails is rolled back
 * the same way (the machine stays in its stopped state). If the rollback itself fails the machine
 * lands in {@code internal-error}. A flush that fails after a stop leaves the machine stopped and fails
 * the future.
 */
public final class Machine implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Machine.class);

    /** Guest-physical address of RAM on the virt board. */
    public static final long RAM_BASE = 0x8000_0000L;
    /** The one machine type so far. */
    public static final String TYPE_VIRT = "virt";

    private final String name;
    private final String type;
    private final LoopDriver driver;
    private final AioContext mainLoop;
    private final Map<String, AioContext> iothreads = new LinkedHashMap<>();
    private final Arena arena;
    /** The session of guest RAM's I/O view ({@link RamBlock#ioSegment()}), or null if the view is RAM's own. */
    private final Arena ioArena;
    private final GuestMemory memory;
    private final InterruptController interrupts = new InterruptController();
    private final MmioBus mmio = new MmioBus(interrupts);
    private final List<Vcpu> vcpus = new ArrayList<>();
    private final Contributions contributions;
    private final VmStateChain chain;
    private final Map<String, BlockBackend> drives = new LinkedHashMap<>();
    /** Whether a drive can be written (drives are only ever added): {@link #flushDrives} has nothing to do otherwise. */
    private volatile boolean writableDrives;
    private final Map<String, Device> devices = new LinkedHashMap<>();
    private final Map<String, List<Registration>> deviceRegistrations = new LinkedHashMap<>();
    private final List<Migratable> states = new CopyOnWriteArrayList<>();
    private final List<Consumer<MachineEvent>> listeners = new CopyOnWriteArrayList<>();
    private final ArrayDeque<Runnable> pendingChanges = new ArrayDeque<>();
    private boolean changeRunning;
    private List<Registration> realizing;
    private volatile RunState state;
    private volatile boolean closed;
    private volatile boolean autostart = true;
    private String guestName;
    private java.util.Map<String, String> guestOptions;

    private Machine(Builder b) {
        if (!TYPE_VIRT.equals(b.type)) {
            throw new ConfigurationException("-machine: unknown machine type '" + b.type + "' (supported: " + TYPE_VIRT + ")");
        }
        if (b.ramSize <= 0 || b.ramSize % DirtyBitmap.PAGE_SIZE != 0) {
            throw new ConfigurationException("-m: RAM size must be a positive multiple of 4 KiB, not " + b.ramSize);
        }
        if (b.ramSize > 0x40_0000_0000L) {
            throw new ConfigurationException("-m: RAM size " + b.ramSize + " is larger than the virt board's 256 GiB");
        }
        this.name = b.name;
        this.type = b.type;
        this.driver = b.driver;
        this.contributions = b.contributions;
        this.state = b.initialState;
        this.arena = Arena.ofShared();
        MemorySegment ram;
        boolean zeroed = b.ramFile == null || fileIsEmpty(b.ramFile);
        try {
            ram = b.ramFile == null ? arena.allocate(b.ramSize, DirtyBitmap.PAGE_SIZE) : mapFile(b.ramFile, b.ramSize, arena);
            if (b.ramFile != null && b.ramPrealloc) {
                // fault every page in now (QEMU's prealloc=on): otherwise the first touch of each page of a
                // shared file allocates it later, for example inside a migration's downtime
                for (long off = 0; off < b.ramSize; off += DirtyBitmap.PAGE_SIZE) {
                    ram.set(java.lang.foreign.ValueLayout.JAVA_BYTE, off, ram.get(java.lang.foreign.ValueLayout.JAVA_BYTE, off));
                }
            }
        } catch (RuntimeException | OutOfMemoryError e) {
            arena.close();
            throw new ConfigurationException("-m: cannot allocate " + b.ramSize + " bytes of guest RAM: " + e.getMessage(), e);
        }
        this.ioArena = separateIoSession() ? Arena.ofShared() : null;
        MemorySegment io = ioArena == null ? ram : ram.reinterpret(ioArena, null);
        this.memory = new GuestMemory(List.of(new RamBlock(b.ramName, RAM_BASE, ram, io, b.ramFile, zeroed)));
        this.mainLoop = new AioContext("main", driver);
        this.chain = new VmStateChain(mainLoop);
        for (String id : b.iothreads) {
            iothreads.put(id, new AioContext(id, driver));
        }
        for (int i = 0; i < b.vcpus; i++) {
            vcpus.add(new Vcpu(i, new AioContext("vcpu" + i, driver), this));
        }
    }

    /**
     * Whether guest RAM's I/O view gets a session of its own (see {@link RamBlock#ioSegment()}): giving a
     * segment another session is a restricted method, so only when this module has native access
     * ({@code --enable-native-access=io.modemu.platform}, as {@code bin/modemu} runs it), and unless
     * {@code -Dmodemu.ram.io-session=false}. Without it, I/O uses RAM's own session, as before.
     */
    private static boolean separateIoSession() {
        return Boolean.parseBoolean(System.getProperty("modemu.ram.io-session", "true")) && Machine.class.getModule().isNativeAccessEnabled();
    }

    /** Whether a RAM backing file is missing or empty, so that the mapping starts zeroed. */
    private static boolean fileIsEmpty(Path file) {
        try {
            return !Files.exists(file) || Files.isRegularFile(file) && Files.size(file) == 0;
        } catch (IOException e) {
            return false;
        }
    }

    private static MemorySegment mapFile(Path file, long size, Arena arena) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            if (ch.size() < size) {
                ch.truncate(size);
                ch.write(java.nio.ByteBuffer.wrap(new byte[1]), size - 1);
            }
            return ch.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
        } catch (IOException e) {
            throw new ConfigurationException("-m: cannot map RAM backing file " + file + ": " + e.getMessage(), e);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    // ---- parts ----

    public String name() {
        return name;
    }

    public String type() {
        return type;
    }

    public LoopDriver loopDriver() {
        return driver;
    }

    /** The main loop: run state, change-state handlers, device realize, backend moves. */
    public AioContext mainLoop() {
        return mainLoop;
    }

    /** The IOThread {@code id}. */
    public AioContext iothread(String id) {
        AioContext c = iothreads.get(id);
        if (c == null) {
            throw new ConfigurationException("no IOThread '" + id + "' (create it with -object iothread,id=" + id + ")");
        }
        return c;
    }

    public Map<String, AioContext> iothreads() {
        return Collections.unmodifiableMap(iothreads);
    }

    public GuestMemory memory() {
        return memory;
    }

    public MmioBus mmio() {
        return mmio;
    }

    public InterruptController interrupts() {
        return interrupts;
    }

    public List<Vcpu> vcpus() {
        return Collections.unmodifiableList(vcpus);
    }

    public Contributions contributions() {
        return contributions;
    }

    public RunState runState() {
        return state;
    }

    public boolean isRunning() {
        return state == RunState.RUNNING;
    }

    // ---- events ----

    /** Listens to machine events (QMP events). Listeners run on the main loop and must not block. */
    public Registration addEventListener(Consumer<MachineEvent> listener) {
        listeners.add(listener);
        return () -> listeners.remove(listener);
    }

    /** Sends an event to the listeners, on the main loop. Any thread. */
    public void emit(String eventName, Map<String, Object> data) {
        MachineEvent e = MachineEvent.of(eventName, data);
        mainLoop.runOrExecute(() -> {
            for (Consumer<MachineEvent> l : listeners) {
                try {
                    l.accept(e);
                } catch (RuntimeException ex) {
                    log.warn("event listener failed on {}", e.name(), ex);
                }
            }
        });
    }

    // ---- registrations that belong to a device ----

    /**
     * Registers a VM change-state handler. See {@link VmStateHandler}; priority orders handlers
     * (stop: descending, start: ascending; ties in registration order). Registered while a device
     * is being created, it is removed if the creation fails or the device is removed.
     */
    public Registration addVmStateHandler(String handlerName, int priority, VmStateHandler handler) {
        return track(chain.add(handlerName, priority, handler));
    }

    /** Attaches an MMIO device to the lowest free virtio-mmio slot. */
    public MmioBus.Slot attachMmio(String owner, MmioDevice device) {
        MmioBus.Slot s = mmio.attach(owner, device);
        track(() -> mmio.detach(device));
        return s;
    }

    /** Registers a device's migration state section. */
    public Registration registerState(Migratable m) {
        for (Migratable other : states) {
            if (other.stateName().equals(m.stateName())) {
                throw new ConfigurationException("state section '" + m.stateName() + "' is registered twice");
            }
        }
        states.add(m);
        return track(() -> states.remove(m));
    }

    /** Every registered migration state section, in registration order. */
    public List<Migratable> states() {
        return List.copyOf(states);
    }

    private Registration track(Registration r) {
        if (realizing != null && mainLoop.inThread()) {
            realizing.add(r);
        }
        return r;
    }

    // ---- configuration (main loop) ----

    /** Runs {@code work} on the main loop and waits for it (inline if already there). */
    public <T> T onMainLoop(Callable<T> work) {
        if (mainLoop.inThread()) {
            try {
                return work.call();
            } catch (RuntimeException e) {
                throw e;
            } catch (Exception e) {
                throw new CompletionException(e);
            }
        }
        try {
            return driver.await(mainLoop.submit(work));
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw e;
        }
    }

    /**
     * Opens a drive: {@code options} holds {@code driver} (a block driver name) and the driver's own
     * options; {@code read-only} is understood for every driver.
     */
    public BlockBackend addDrive(String id, Options options) {
        return onMainLoop(() -> {
            if (id == null || id.isEmpty() || !id.matches("[A-Za-z][A-Za-z0-9_.-]*")) {
                throw new ConfigurationException(options.context() + ": invalid drive id '" + id + "' (a letter, then letters, digits, '-', '.', '_')");
            }
            if (drives.containsKey(id)) {
                throw new ConfigurationException(options.context() + ": duplicate drive id '" + id + "'");
            }
            String driverName = options.string("driver");
            BlockDriver bd = contributions.blockDriver(driverName);
            boolean readOnly = options.bool("read-only", false);
            BlockNode node = bd.open(options);
            try {
                options.checkAllUsed();
            } catch (ConfigurationException e) {
                node.close();
                throw e;
            }
            BlockBackend be = new BlockBackend(id, bd.name(), node, mainLoop, readOnly);
            drives.put(id, be);
            writableDrives |= !be.isReadOnly();
            return be;
        });
    }

    public BlockBackend blockBackend(String id) {
        BlockBackend b = drives.get(id);
        if (b == null) {
            throw new ConfigurationException("no drive '" + id + "' (define it with -drive id=" + id + ",... or -blockdev node-name=" + id + ",...)");
        }
        return b;
    }

    public Map<String, BlockBackend> blockBackends() {
        return Collections.unmodifiableMap(drives);
    }

    /**
     * Creates a device from {@code -device} options ({@code driver=TYPE}, optional {@code id}). Runs on the main
     * loop. Nothing is left half-created: if the device type throws, every registration it made
     * through this machine is undone; if it returned a device but an option was left unread, the
     * device is unrealized first.
     */
    public Device addDevice(Options options) {
        return onMainLoop(() -> {
            String typeName = options.string("driver");
            DeviceType t = contributions.deviceType(typeName);
            String id = options.string("id", null);
            if (id == null) {
                int n = 0;
                while (devices.containsKey(typeName + "." + n)) {
                    n++;
                }
                id = typeName + "." + n;
            } else if (devices.containsKey(id)) {
                throw new ConfigurationException(options.context() + ": duplicate device id '" + id + "'");
            }
            List<Registration> regs = new ArrayList<>();
            realizing = regs;
            Device d = null;
            // the device reads its options through this copy, so this copy knows which were used
            Options deviceOptions = options.withContext("-device " + typeName + ",id=" + id);
            try {
                d = t.create(this, id, deviceOptions);
                deviceOptions.checkAllUsed();
            } catch (RuntimeException e) {
                realizing = null;
                if (d != null) {
                    // created, then refused (an unknown option): release what it holds, as a removal would
                    try {
                        d.unrealize();
                    } catch (RuntimeException ue) {
                        e.addSuppressed(ue);
                    }
                }
                undo(regs);
                throw e;
            } finally {
                realizing = null;
            }
            devices.put(id, d);
            deviceRegistrations.put(id, regs);
            return d;
        });
    }

    private static void undo(List<Registration> regs) {
        for (int i = regs.size() - 1; i >= 0; i--) {
            try {
                regs.get(i).close();
            } catch (RuntimeException e) {
                log.warn("undoing a registration failed", e);
            }
        }
    }

    public Map<String, Device> devices() {
        return Collections.unmodifiableMap(devices);
    }

    /** Loads guest program {@code programName} on vCPU 0. */
    public GuestTask loadGuest(String programName, Options options) {
        return onMainLoop(() -> {
            if (vcpus.isEmpty()) {
                throw new ConfigurationException("-guest: the machine has no vCPU");
            }
            GuestProgram p = contributions.guestProgram(programName);
            Vcpu cpu = vcpus.getFirst();
            GuestTask task = p.load(cpu, options);
            options.checkAllUsed();
            cpu.load(task);
            guestName = programName;
            guestOptions = new java.util.LinkedHashMap<>(options.asMap());
            return task;
        });
    }

    /** Whether the VM starts by itself once an incoming migration completed (cleared by {@code -S} and QMP {@code stop}). */
    public boolean autostart() {
        return autostart;
    }

    public void setAutostart(boolean on) {
        this.autostart = on;
    }

    /**
     * Copies {@code file} into guest RAM at {@code gpa} (QEMU's generic loader).
     *
     * @throws ConfigurationException if the file cannot be read or does not fit in RAM at that address
     */
    public void loadImage(Path file, long gpa) {
        long size;
        try {
            size = java.nio.file.Files.size(file);
        } catch (IOException e) {
            throw new ConfigurationException("-device loader: cannot read '" + file + "': " + (e instanceof java.nio.file.NoSuchFileException ? "no such file" : e.getMessage()));
        }
        if (!memory.isRam(gpa, size)) {
            throw new ConfigurationException(String.format("-device loader: '%s' (%d bytes) does not fit in guest RAM at 0x%x", file, size, gpa));
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            java.nio.ByteBuffer dst = memory.slice(gpa, size).asByteBuffer();
            while (dst.hasRemaining()) {
                if (ch.read(dst) < 0) {
                    break;
                }
            }
            memory.markDirty(gpa, size);
        } catch (IOException e) {
            throw new ConfigurationException("-device loader: cannot read '" + file + "': " + e.getMessage());
        }
    }

    /**
     * A system reset (QMP {@code system_reset}): the vCPUs pause, every {@link io.modemu.device.Resettable}
     * device resets, the guest program is loaded afresh, and the vCPUs resume if the VM runs. Any thread.
     */
    public CompletableFuture<Void> systemReset() {
        return queueChange(() -> pauseVcpus().thenComposeAsync(v -> {
            for (Device d : devices.values()) {
                if (d instanceof io.modemu.device.Resettable r) {
                    r.reset();
                }
            }
            if (guestName != null && !vcpus.isEmpty()) {
                Vcpu cpu = vcpus.getFirst();
                cpu.load(contributions.guestProgram(guestName).load(cpu, Options.of("-guest " + guestName, guestOptions)));
            }
            emit("RESET", Map.of("guest", false, "reason", "host-qmp-system-reset"));
            return state == RunState.RUNNING ? resumeVcpus() : CompletableFuture.completedFuture(null);
        }, mainLoop));
    }

    // ---- run state ----

    /**
     * Stops the VM into {@code newState}. Any thread; the change runs on the main loop after the
     * changes queued before it. See the class comment for the sequence and what happens on failure.
     *
     * @return completes on the main loop when the VM is stopped and flushed
     */
    public CompletableFuture<Void> vmStop(RunState newState) {
        return queueChange(() -> doStop(newState, false));
    }

    /**
     * As {@link #vmStop}, but a VM that is not running still changes to {@code newState} (QEMU's
     * vm_stop_force_state, what migration completion uses: paused to finish-migrate).
     */
    public CompletableFuture<Void> vmStopForceState(RunState newState) {
        return queueChange(() -> doStop(newState, true));
    }

    /** Starts (or resumes) the VM. Any thread. */
    public CompletableFuture<Void> vmStart() {
        return queueChange(this::doStart);
    }

    /**
     * Changes the run state without running handlers, for states that do not change whether the VM
     * runs (for example {@code inmigrate} to {@code postmigrate}, or {@code paused} to {@code prelaunch}).
     */
    public CompletableFuture<Void> setRunState(RunState newState) {
        return queueChange(() -> {
            RunState prev = state;
            RunStateTable.check(prev, newState);
            if (prev == RunState.RUNNING || newState == RunState.RUNNING) {
                throw new IllegalStateException("use vmStop/vmStart to leave or enter 'running'");
            }
            setState(newState);
            return CompletableFuture.completedFuture(null);
        });
    }

    private CompletableFuture<Void> queueChange(Supplier<CompletableFuture<Void>> change) {
        CompletableFuture<Void> result = new CompletableFuture<>();
        mainLoop.execute(() -> {
            pendingChanges.add(() -> {
                CompletableFuture<Void> f;
                try {
                    f = change.get();
                } catch (Throwable t) {
                    f = CompletableFuture.failedFuture(t);
                }
                f.whenComplete((v, t) -> mainLoop.runOrExecute(() -> {
                    changeRunning = false;
                    runNextChange();
                    if (t != null) {
                        result.completeExceptionally(t instanceof CompletionException && t.getCause() != null ? t.getCause() : t);
                    } else {
                        result.complete(null);
                    }
                }));
            });
            runNextChange();
        });
        return result;
    }

    private void runNextChange() {
        mainLoop.assertInThread();
        if (!changeRunning && !pendingChanges.isEmpty()) {
            changeRunning = true;
            pendingChanges.poll().run();
        }
    }

    private void setState(RunState s) {
        RunState old = state;
        state = s;
        if (old != s) {
            log.debug("machine '{}': run state {} -> {}", name, old, s);
        }
    }

    private CompletableFuture<Void> doStop(RunState target, boolean force) {
        mainLoop.assertInThread();
        RunState prev = state;
        if (prev != RunState.RUNNING) {
            if (force && prev != target) {
                RunStateTable.check(prev, target);
                setState(target);
            }
            return flushAll();
        }
        RunStateTable.check(prev, target);
        setState(target);
        emit("STOP", Map.of());
        List<VmStateChain.Entry> stopped = new ArrayList<>();
        return pauseVcpus()
                .thenComposeAsync(v -> chain.walk(chain.descending(), "stop", e -> e.handler().stop(target), stopped), mainLoop)
                .handle((v, t) -> {
                    if (t == null) {
                        return flushAll();
                    }
                    Throwable cause = unwrap(t);
                    log.error("machine '{}': stop to {} failed, resuming: {}", name, target, cause.getMessage());
                    List<VmStateChain.Entry> restart = new ArrayList<>(stopped);
                    Collections.reverse(restart);
                    return chain.walk(restart, "start (rolling back a failed stop)", e -> e.handler().start(), new ArrayList<>())
                            .thenCompose(x -> resumeVcpus())
                            .handle((x, rt) -> {
                                mainLoop.assertInThread();
                                if (rt != null) {
                                    setState(RunState.INTERNAL_ERROR);
                                    cause.addSuppressed(unwrap(rt));
                                } else {
                                    setState(prev);
                                    emit("RESUME", Map.of());
                                }
                                return CompletableFuture.<Void>failedFuture(cause);
                            }).thenCompose(f -> f);
                }).thenCompose(f -> f);
    }

    private CompletableFuture<Void> doStart() {
        mainLoop.assertInThread();
        RunState prev = state;
        if (prev == RunState.RUNNING) {
            return CompletableFuture.completedFuture(null);
        }
        RunStateTable.check(prev, RunState.RUNNING);
        setState(RunState.RUNNING);
        List<VmStateChain.Entry> started = new ArrayList<>();
        return chain.walk(chain.ascending(), "start", e -> e.handler().start(), started)
                .handle((v, t) -> {
                    if (t == null) {
                        return resumeVcpus().thenRun(() -> emit("RESUME", Map.of()));
                    }
                    Throwable cause = unwrap(t);
                    log.error("machine '{}': start failed, staying {}: {}", name, prev, cause.getMessage());
                    List<VmStateChain.Entry> restop = new ArrayList<>(started);
                    Collections.reverse(restop);
                    return chain.walk(restop, "stop (rolling back a failed start)", e -> e.handler().stop(prev), new ArrayList<>())
                            .handle((x, rt) -> {
                                if (rt != null) {
                                    setState(RunState.INTERNAL_ERROR);
                                    cause.addSuppressed(unwrap(rt));
                                } else {
                                    setState(prev);
                                }
                                return CompletableFuture.<Void>failedFuture(cause);
                            }).thenCompose(f -> f);
                }).thenCompose(f -> f);
    }

    private CompletableFuture<Void> pauseVcpus() {
        CompletableFuture<?>[] fs = vcpus.stream().map(c -> c.pause().toCompletableFuture()).toArray(CompletableFuture[]::new);
        return CompletableFuture.allOf(fs);
    }

    /**
     * Lets the vCPUs run again without waiting for them, as QEMU's resume_all_vcpus: each vCPU's context
     * takes the resume in order with anything queued to it later (a pause included), so a stop that
     * follows still finds every vCPU at a safe point; the VM counts as running once this returns.
     */
    private CompletableFuture<Void> resumeVcpus() {
        for (Vcpu c : vcpus) {
            c.resume().whenComplete((v, t) -> {
                if (t != null) {
                    log.error("machine '{}': vCPU {} did not resume: {}", name, c.index(), t.toString());
                }
            });
        }
        return CompletableFuture.completedFuture(null);
    }

    /**
     * Flushes every writable drive as a stop does (QEMU's {@code bdrv_flush_all}), without stopping
     * anything: the guest's I/O goes on meanwhile. Any thread; completes on the main loop once every
     * flush completed, exceptionally with the first drive's failure. A migration calls it before its
     * stop, so that the flush inside the downtime only writes back what the guest wrote after it.
     */
    public CompletableFuture<Void> flushDrives() {
        if (!writableDrives) {
            return CompletableFuture.completedFuture(null);
        }
        return mainLoop.submit(this::flushAll).thenCompose(f -> f);
    }

    /** Flushes every drive (bdrv_flush_all); completes on the main loop. */
    private CompletableFuture<Void> flushAll() {
        List<CompletableFuture<String>> fs = new ArrayList<>();
        for (BlockBackend b : drives.values()) {
            if (b.isReadOnly()) {
                continue;
            }
            fs.add(b.flush().toCompletableFuture().thenApply(st -> st < 0 ? "flush of drive '" + b.id() + "' failed: " + Errno.name(st) : null));
        }
        return CompletableFuture.allOf(fs.toArray(CompletableFuture[]::new)).thenComposeAsync(v -> {
            for (CompletableFuture<String> f : fs) {
                String err = f.join();
                if (err != null) {
                    return CompletableFuture.failedFuture(new IllegalStateException(err));
                }
            }
            return CompletableFuture.completedFuture(null);
        }, mainLoop);
    }

    static Throwable unwrap(Throwable t) {
        while ((t instanceof CompletionException || t instanceof java.util.concurrent.ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    /** A guest program failed on a vCPU: the VM stops into guest-panicked. Any thread. */
    void guestPanicked(Throwable cause) {
        emit("GUEST_PANICKED", Map.of("action", "pause", "reason", String.valueOf(cause.getMessage())));
        vmStop(RunState.GUEST_PANICKED);
    }

    /**
     * Tears the machine down: devices unrealized and drives closed on the main loop, then every loop
     * stopped and guest RAM released. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (!mainLoop.inThread()) {
            // let a step that is running finish before guest RAM goes away
            try {
                driver.await(pauseVcpus().orTimeout(10, java.util.concurrent.TimeUnit.SECONDS));
            } catch (RuntimeException e) {
                log.warn("machine '{}': vCPUs did not pause before teardown: {}", name, e.getMessage());
            }
        }
        try {
            onMainLoop(() -> {
                for (Vcpu c : vcpus) {
                    c.context().close();
                }
                List<String> ids = new ArrayList<>(devices.keySet());
                Collections.reverse(ids);
                for (String id : ids) {
                    try {
                        devices.get(id).unrealize();
                    } catch (RuntimeException e) {
                        log.warn("device '{}' failed to unrealize", id, e);
                    }
                    undo(deviceRegistrations.getOrDefault(id, List.of()));
                }
                for (BlockBackend b : drives.values()) {
                    try {
                        b.close();
                    } catch (RuntimeException e) {
                        log.warn("drive '{}' failed to close", b.id(), e);
                    }
                }
                return null;
            });
        } catch (RuntimeException e) {
            log.warn("machine '{}': orderly teardown failed", name, e);
        }
        for (AioContext c : iothreads.values()) {
            c.close();
        }
        mainLoop.close();
        try {
            // the I/O view first: while an I/O holds it, RAM stays mapped
            if (ioArena != null) {
                ioArena.close();
            }
            arena.close();
        } catch (IllegalStateException e) {
            log.warn("machine '{}': guest RAM still in use at close", name);
        }
    }

    /** Builds a machine. The result starts in {@code prelaunch} (or the state given) with its loops running. */
    public static final class Builder {
        private String name = "modemu";
        private String type = TYPE_VIRT;
        private LoopDriver driver;
        private long ramSize = 128L << 20;
        private String ramName = "ram";
        private Path ramFile;
        private boolean ramPrealloc;
        private final List<String> iothreads = new ArrayList<>();
        private int vcpus = 1;
        private Contributions contributions = Contributions.builder().build();
        private RunState initialState = RunState.PRELAUNCH;

        public Builder name(String n) {
            this.name = n;
            return this;
        }

        public Builder type(String t) {
            this.type = t;
            return this;
        }

        public Builder loopDriver(LoopDriver d) {
            this.driver = d;
            return this;
        }

        public Builder ram(long bytes) {
            this.ramSize = bytes;
            return this;
        }

        /** Names the RAM block (the same name on both ends of a migration). */
        public Builder ramName(String n) {
            this.ramName = n;
            return this;
        }

        /** Backs guest RAM with a shared mapping of {@code file} (created or grown as needed). */
        public Builder ramFile(Path file) {
            this.ramFile = file;
            return this;
        }

        /** Touches every page of a file-backed RAM at start (QEMU's {@code prealloc=on}). */
        public Builder ramPrealloc(boolean on) {
            this.ramPrealloc = on;
            return this;
        }

        public Builder iothread(String id) {
            if (id == null || !id.matches("[A-Za-z][A-Za-z0-9_.-]*")) {
                throw new ConfigurationException("-object iothread: invalid id '" + id + "'");
            }
            if (iothreads.contains(id)) {
                throw new ConfigurationException("-object iothread: duplicate id '" + id + "'");
            }
            iothreads.add(id);
            return this;
        }

        public Builder vcpus(int n) {
            if (n < 0 || n > 64) {
                throw new ConfigurationException("-smp: " + n + " vCPUs is outside 0..64");
            }
            this.vcpus = n;
            return this;
        }

        public Builder contributions(Contributions c) {
            this.contributions = c;
            return this;
        }

        /** The run state the machine starts in: {@code prelaunch} by default, {@code inmigrate} for {@code -incoming}. */
        public Builder initialState(RunState s) {
            this.initialState = s;
            return this;
        }

        public Machine build() {
            if (driver == null) {
                driver = new ThreadLoopDriver();
            }
            return new Machine(this);
        }
    }
}
