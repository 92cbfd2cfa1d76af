package io.modemu.migration.rdmasim.verbs;

import io.modemu.platform.ProcessFiles;
import java.io.DataInputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.UserPrincipal;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An opened simulated adapter ({@code ibv_context}), one per process and endpoint: the factory of
 * protection domains, completion queues, shared memory and connections.
 *
 * <p>The fabric works between processes on one host. Each device publishes a table in a shared file
 * (under {@link FabricSettings#shmDirectory()}) describing its queue pairs, its remotely accessible
 * memory and its memory regions; a connected peer maps that table and the files behind the regions,
 * and performs one-sided requests itself, checked against the table, as the responder's adapter would
 * ({@link PeerMemory}). Two-sided messages, acknowledgements, error notices and the peer-death signal
 * go over a loopback TCP connection per queue pair, set up by the connection manager
 * ({@link #listen}, {@link #connect}).
 *
 * <p>Files are named {@code modemu-rdmasim-<pid>-<device>-…}; a device removes its own when closed,
 * and files left by processes that no longer exist are removed when a device opens.
 *
 * <p>Thread-safe.
 */
public final class RdmaDevice implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RdmaDevice.class);
    static final String FILE_PREFIX = "modemu-rdmasim-";

    private final FabricSettings settings;
    private final long pid = ProcessHandle.current().pid();
    private final long deviceId;
    private final String name;
    private final Arena arena = Arena.ofShared();
    private final SharedTable table;
    private final UserPrincipal owner;
    private final LinkModel linkModel;
    private final ScheduledThreadPoolExecutor timers;
    private final Object lock = new Object();
    private final AtomicReferenceArray<MemoryRegion> regions;
    private final AtomicInteger nextId = new AtomicInteger(1);
    private final Set<ProtectionDomain> pds = ConcurrentHashMap.newKeySet();
    private final Set<CompletionQueue> cqs = ConcurrentHashMap.newKeySet();
    private final Set<ConnectionListener> listeners = ConcurrentHashMap.newKeySet();
    private final Set<Link> links = ConcurrentHashMap.newKeySet();
    // guarded by lock
    private final boolean[] regionBusy;
    private final byte[] regionGeneration;
    private int regionHint;
    private final SharedMemory[] shared;
    private final int[] sharedRegions;
    private final int[] sharedGeneration;
    private final QueuePair[] queuePairs;
    private final int[] qpGeneration;
    private volatile boolean closed;

    private RdmaDevice(FabricSettings settings) throws IOException {
        this.settings = settings;
        this.deviceId = new SecureRandom().nextLong() & Long.MAX_VALUE;
        this.name = String.format("rdma-sim device %x (pid %d)", deviceId, pid);
        Path dir = settings.shmDirectory();
        if (!Files.isDirectory(dir)) {
            throw new IOException("rdma-sim: shared memory directory " + dir + " does not exist");
        }
        ProcessFiles.sweep(dir, FILE_PREFIX);
        Path tableFile = dir.resolve(prefix() + "table");
        try {
            this.table = SharedTable.create(tableFile, pid, deviceId, settings.maxQueuePairs(), settings.maxSharedFiles(),
                    settings.maxMemoryRegions(), arena);
            this.owner = Files.getOwner(tableFile);
        } catch (IOException | RuntimeException e) {
            arena.close();
            Files.deleteIfExists(tableFile);
            throw new IOException("rdma-sim: cannot create the device table " + tableFile + ": " + (e.getMessage() == null ? e.toString() : e.getMessage()), e);
        }
        this.linkModel = new LinkModel(settings.latency().toNanos(), settings.bandwidthBytesPerSecond(), System::nanoTime);
        this.timers = new ScheduledThreadPoolExecutor(1, r -> Thread.ofPlatform().daemon().name("rdma-sim timers " + Long.toHexString(deviceId)).unstarted(r));
        this.timers.setRemoveOnCancelPolicy(true);
        this.timers.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        this.regions = new AtomicReferenceArray<>(settings.maxMemoryRegions());
        this.regionBusy = new boolean[settings.maxMemoryRegions()];
        this.regionGeneration = new byte[settings.maxMemoryRegions()];
        this.shared = new SharedMemory[settings.maxSharedFiles()];
        this.sharedRegions = new int[settings.maxSharedFiles()];
        this.sharedGeneration = new int[settings.maxSharedFiles()];
        this.queuePairs = new QueuePair[settings.maxQueuePairs()];
        this.qpGeneration = new int[settings.maxQueuePairs()];
        log.debug("opened {} with table {}", name, tableFile);
    }

    /**
     * Opens a device.
     *
     * @throws IOException when its table cannot be created in the shared memory directory
     */
    public static RdmaDevice open(FabricSettings settings) throws IOException {
        return new RdmaDevice(Objects.requireNonNull(settings, "settings"));
    }

    public static RdmaDevice open() throws IOException {
        return open(FabricSettings.defaults());
    }

    public FabricSettings settings() {
        return settings;
    }

    /** For messages: {@code rdma-sim device <id> (pid <pid>)}. */
    public String name() {
        return name;
    }

    private String prefix() {
        return ProcessFiles.namePrefix(FILE_PREFIX) + Long.toHexString(deviceId) + "-";
    }

    private void checkOpen() {
        if (closed) {
            throw new VerbsException(VerbsException.Reason.CLOSED, name + " is closed");
        }
    }

    // ---- objects ----

    /** {@code ibv_alloc_pd}. */
    public ProtectionDomain allocateProtectionDomain() {
        checkOpen();
        ProtectionDomain pd = new ProtectionDomain(this, nextId.getAndIncrement());
        pds.add(pd);
        return pd;
    }

    /** {@code ibv_create_cq} with room for {@code capacity} completions. */
    public CompletionQueue createCompletionQueue(int capacity) {
        checkOpen();
        if (capacity < 1 || capacity > 1 << 22) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, "completion queue capacity " + capacity + " outside 1.." + (1 << 22));
        }
        CompletionQueue cq = new CompletionQueue(this, nextId.getAndIncrement(), capacity);
        cqs.add(cq);
        return cq;
    }

    void forget(ProtectionDomain pd) {
        pds.remove(pd);
    }

    void forget(CompletionQueue cq) {
        cqs.remove(cq);
    }

    void forget(ConnectionListener l) {
        listeners.remove(l);
    }

    void track(Link l) {
        links.add(l);
    }

    void forget(Link l) {
        links.remove(l);
    }

    // ---- shared memory ----

    /**
     * Allocates {@code size} bytes of memory a peer can reach: a new file in the shared memory
     * directory, mapped. Closing it unmaps it and deletes the file.
     */
    public SharedMemory allocateShared(long size) throws IOException {
        checkOpen();
        if (size <= 0) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, "shared memory size " + size + " must be positive");
        }
        int index;
        int gen;
        synchronized (lock) {
            index = freeSharedSlot();
            gen = ++sharedGeneration[index];
            shared[index] = placeholder(index);
        }
        Path file = settings.shmDirectory().resolve(prefix() + "mem" + index + "." + gen);
        Arena mapping = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.truncate(size);
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_WRITE, 0, size, mapping);
            SharedMemory sm = new SharedMemory(this, index, gen, file, seg, mapping);
            synchronized (lock) {
                shared[index] = sm;
                table.publishFile(index, gen, file, size);
            }
            return sm;
        } catch (IOException | RuntimeException e) {
            mapping.close();
            Files.deleteIfExists(file);
            synchronized (lock) {
                shared[index] = null;
            }
            throw new IOException("rdma-sim: cannot allocate " + size + " bytes of shared memory in " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Declares that {@code mapping} is a shared ({@code READ_WRITE}) mapping of {@code file} from its
     * first byte, so that regions in it can be registered with remote access: the peer reaches them
     * by mapping the same file. Guest RAM backed by a file is the case in point. The caller keeps
     * owning the mapping and the file.
     *
     * @throws VerbsException INVALID_ARGUMENT when the file is missing, shorter than the mapping, or
     *                        the mapping is not native memory
     */
    public SharedMemory attachShared(Path file, MemorySegment mapping) {
        checkOpen();
        Path abs = file.toAbsolutePath().normalize();
        if (!mapping.isNative()) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, "rdma-sim: the mapping of " + abs + " is not native memory");
        }
        long size;
        try {
            if (!Files.isRegularFile(abs)) {
                throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, "rdma-sim: " + abs + " is not a regular file");
            }
            size = Files.size(abs);
        } catch (IOException e) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, "rdma-sim: cannot read " + abs + ": " + e.getMessage(), e);
        }
        if (size < mapping.byteSize()) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT,
                    "rdma-sim: " + abs + " has " + size + " bytes, fewer than the " + mapping.byteSize() + " of its mapping");
        }
        synchronized (lock) {
            int index = freeSharedSlot();
            int gen = ++sharedGeneration[index];
            SharedMemory sm = new SharedMemory(this, index, gen, abs, mapping, null);
            shared[index] = sm;
            table.publishFile(index, gen, abs, mapping.byteSize());
            return sm;
        }
    }

    private SharedMemory placeholder(int index) {
        return new SharedMemory(this, index, 0, Path.of(""), MemorySegment.NULL, null);
    }

    private int freeSharedSlot() {
        for (int i = 0; i < shared.length; i++) {
            if (shared[i] == null) {
                return i;
            }
        }
        throw new VerbsException(VerbsException.Reason.NO_RESOURCES, name + ": all " + shared.length + " shared memory slots are in use");
    }

    void releaseShared(SharedMemory sm) {
        synchronized (lock) {
            if (sm.isClosed() || shared[sm.index()] != sm) {
                return;
            }
            if (sharedRegions[sm.index()] > 0) {
                throw new VerbsException(VerbsException.Reason.BUSY, "rdma-sim: " + sharedRegions[sm.index()]
                        + " memory regions are still registered in " + sm.file() + ": deregister them first");
            }
            table.clearFile(sm.index());
            shared[sm.index()] = null;
            sm.markClosed();
        }
        if (sm.mappingArena() != null) {
            try {
                sm.mappingArena().close();
            } catch (IllegalStateException e) {
                log.warn("rdma-sim: {} is still in use while closing: {}", sm.file(), e.getMessage());
            }
            try {
                Files.deleteIfExists(sm.file());
            } catch (IOException e) {
                log.warn("rdma-sim: cannot delete {}: {}", sm.file(), e.getMessage());
            }
        }
    }

    private SharedMemory sharedContaining(MemorySegment mem) {
        synchronized (lock) {
            for (SharedMemory sm : shared) {
                if (sm != null && sm.generation() != 0 && !sm.isClosed() && sm.contains(mem.address(), mem.byteSize())) {
                    return sm;
                }
            }
            return null;
        }
    }

    // ---- memory regions ----

    MemoryRegion register(ProtectionDomain pd, MemorySegment mem, Set<Access> access) {
        checkOpen();
        Objects.requireNonNull(mem, "memory");
        if (!mem.isNative()) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT,
                    "ibv_reg_mr: only native memory can be registered (a heap segment has no fixed address)");
        }
        if (mem.byteSize() == 0) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, "ibv_reg_mr: an empty region cannot be registered");
        }
        int bits = Access.bits(access);
        if ((bits & Access.REMOTE_WRITE.bit) != 0 && (bits & Access.LOCAL_WRITE.bit) == 0) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, "ibv_reg_mr: REMOTE_WRITE needs LOCAL_WRITE too (as in verbs)");
        }
        SharedMemory sm = null;
        if (Access.anyRemote(bits)) {
            sm = sharedContaining(mem);
            if (sm == null) {
                throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, String.format(
                        "ibv_reg_mr: [0x%x, 0x%x) with %s lies in no memory the peer can reach; regions with remote access must lie in "
                                + "RdmaDevice.allocateShared memory or in a file mapping declared with RdmaDevice.attachShared",
                        mem.address(), mem.address() + mem.byteSize(), Access.fromBits(bits)));
            }
        }
        synchronized (lock) {
            int n = regionBusy.length;
            int index = -1;
            for (int k = 0; k < n; k++) {
                int i = (regionHint + k) % n;
                if (!regionBusy[i]) {
                    index = i;
                    break;
                }
            }
            if (index < 0) {
                throw new VerbsException(VerbsException.Reason.NO_RESOURCES, name + ": all " + n + " memory regions are in use");
            }
            regionHint = index + 1;
            int gen = (regionGeneration[index] + 1) & 0xff;
            if (gen == 0) {
                gen = 1;
            }
            regionGeneration[index] = (byte) gen;
            int key = index << 8 | gen;
            if (sm != null && (sm.isClosed() || shared[sm.index()] != sm)) {
                throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, "ibv_reg_mr: " + sm.file() + " was released meanwhile");
            }
            MemoryRegion mr = new MemoryRegion(pd, index, key, mem, bits, sm);
            regionBusy[index] = true;
            if (sm != null) {
                sharedRegions[sm.index()]++;
                table.publishMr(index, key, bits, pd.id(), sm.index(), sm.generation(), mem.address() - sm.segment().address(), mem.address(), mem.byteSize());
            } else {
                table.publishMr(index, key, bits, pd.id(), -1, 0, 0, mem.address(), mem.byteSize());
            }
            regions.set(index, mr);
            pd.regions.add(mr);
            return mr;
        }
    }

    void deregister(MemoryRegion mr) {
        deregister(java.util.List.of(mr));
    }

    /**
     * Deregisters {@code mrs} together: all are invalidated first, then the accesses in progress are
     * waited for once, then all are freed. Same guarantee as one {@code ibv_dereg_mr} per region.
     */
    void deregister(java.util.Collection<MemoryRegion> mrs) {
        for (MemoryRegion mr : mrs) {
            if (!mr.isRegistered()) {
                throw new VerbsException(VerbsException.Reason.INVALID_STATE, "ibv_dereg_mr: " + mr + " is already deregistered");
            }
        }
        List<MemoryRegion> mine = new ArrayList<>(mrs.size());
        for (MemoryRegion mr : mrs) {
            if (mr.markDeregistered()) {
                regions.set(mr.index(), null);
                table.markInvalidating(mr.index());
                mine.add(mr);
            }
        }
        long deadline = System.nanoTime() + settings.deregisterTimeout().toNanos();
        for (MemoryRegion mr : mine) {
            ProtectionDomain pd = mr.protectionDomain();
            if (table.inUse(mr.index()) > 0 && !table.awaitIdle(mr.index(), deadline, pd::allPeersGone)) {
                if (pd.allPeersGone()) {
                    log.info("rdma-sim: deregistering {}: a peer died in the middle of an access to it; no process that could access it is left", mr);
                } else {
                    log.warn("rdma-sim: deregistering {}: a peer's access to it did not finish within {}; going on", mr, settings.deregisterTimeout());
                }
            }
        }
        synchronized (lock) {
            for (MemoryRegion mr : mine) {
                table.freeMr(mr.index());
                regionBusy[mr.index()] = false;
                if (mr.shared() != null) {
                    sharedRegions[mr.shared().index()]--;
                }
            }
        }
        for (MemoryRegion mr : mine) {
            mr.protectionDomain().regions.remove(mr);
        }
    }

    /** The registered region with local key {@code lkey}, or null. */
    MemoryRegion localRegion(int lkey) {
        int index = lkey >>> 8;
        if (index >= regions.length()) {
            return null;
        }
        MemoryRegion mr = regions.get(index);
        return mr != null && mr.key() == lkey && mr.isRegistered() ? mr : null;
    }

    // ---- queue pairs ----

    QueuePair createQueuePair(ProtectionDomain pd, QueuePairConfig config) {
        checkOpen();
        if (config.sendCq().isForeign(this) || config.recvCq().isForeign(this)) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, "ibv_create_qp: the completion queues belong to another device");
        }
        QueuePair qp;
        synchronized (lock) {
            int slot = -1;
            for (int i = 1; i < queuePairs.length; i++) {
                if (queuePairs[i] == null) {
                    slot = i;
                    break;
                }
            }
            if (slot < 0) {
                throw new VerbsException(VerbsException.Reason.NO_RESOURCES, name + ": all " + (queuePairs.length - 1) + " queue pairs are in use");
            }
            int gen = ++qpGeneration[slot];
            config.sendCq().attach();
            if (config.recvCq() != config.sendCq()) {
                try {
                    config.recvCq().attach();
                } catch (RuntimeException e) {
                    config.sendCq().detach();
                    throw e;
                }
            }
            qp = new QueuePair(this, pd, slot, gen, config);
            queuePairs[slot] = qp;
            table.publishQp(slot, QpState.RESET, pd.id(), gen);
        }
        pd.queuePairs.add(qp);
        return qp;
    }

    void publishQueuePair(QueuePair qp, QpState state) {
        table.publishQp(qp.slot, state, qp.pd.id(), qp.generation);
    }

    void destroyQueuePair(QueuePair qp) {
        synchronized (lock) {
            if (queuePairs[qp.slot] != qp) {
                return;
            }
            queuePairs[qp.slot] = null;
            table.publishQp(qp.slot, null, 0, qp.generation);
        }
        qp.config.sendCq().detach();
        if (qp.config.recvCq() != qp.config.sendCq()) {
            qp.config.recvCq().detach();
        }
        qp.pd.queuePairs.remove(qp);
    }

    // ---- connection manager ----

    /** {@code rdma_bind_addr} + {@code rdma_listen} on {@code address} (port 0 picks a free port). */
    public ConnectionListener listen(InetSocketAddress address) throws IOException {
        checkOpen();
        ServerSocketChannel server = ServerSocketChannel.open();
        try {
            server.bind(address);
        } catch (IOException e) {
            server.close();
            throw new IOException("rdma-sim: cannot listen on " + address + ": " + e.getMessage(), e);
        }
        ConnectionListener l = new ConnectionListener(this, server);
        listeners.add(l);
        return l;
    }

    /**
     * {@code rdma_resolve_addr} + {@code rdma_resolve_route} + {@code rdma_connect}: connects {@code qp}
     * (in RESET or INIT) to the listener at {@code address}, sending {@code params.privateData()}, and
     * takes it to RTS once accepted.
     *
     * @throws ConnectionRejectedException when the listener rejects, with its private data
     * @throws IOException                 naming the address when it cannot be reached or the handshake fails
     */
    public Connection connect(InetSocketAddress address, QueuePair qp, ConnectionParameters params, Duration timeout) throws IOException {
        checkOpen();
        if (qp.device != this) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, qp.name() + " belongs to another device");
        }
        if (params.privateData().length > ConnectionParameters.MAX_CONNECT_PRIVATE_DATA) {
            throw new VerbsException(VerbsException.Reason.INVALID_ARGUMENT, "rdma_connect: " + params.privateData().length
                    + " bytes of private data, at most " + ConnectionParameters.MAX_CONNECT_PRIVATE_DATA + " allowed");
        }
        qp.prepareForConnection();
        String peer = address.getHostString() + ":" + address.getPort();
        int timeoutMs = (int) Math.max(1, Math.min(Integer.MAX_VALUE, timeout.toMillis()));
        SocketChannel ch = SocketChannel.open();
        PeerMemory memory = null;
        try {
            try {
                ch.socket().connect(address, timeoutMs);
            } catch (IOException e) {
                throw new IOException("rdma-sim: cannot reach " + peer + ": " + e.getMessage(), e);
            }
            ch.socket().setTcpNoDelay(true);
            ch.socket().setSoTimeout(timeoutMs);
            CmMessage.write(ch, CmMessage.endpoint(CmMessage.REQ, endpoint(qp, params)));
            CmMessage.Received m;
            try {
                m = CmMessage.read(new DataInputStream(ch.socket().getInputStream()), peer);
            } catch (SocketTimeoutException e) {
                throw new IOException("rdma-sim: " + peer + " did not answer the connect request within " + timeout, e);
            }
            if (m.kind() == CmMessage.REJ) {
                throw new ConnectionRejectedException("rdma-sim: " + peer + " rejected the connection: " + m.rejectDetail(), m.rejectData());
            }
            if (m.kind() != CmMessage.REP) {
                throw new IOException("rdma-sim: " + peer + " answered the connect request with handshake message kind " + m.kind());
            }
            memory = openPeer(m.endpoint(), peer);
            CmMessage.write(ch, CmMessage.rtu());
            ch.socket().setSoTimeout(0);
            Link link = new Link(this, ch, memory, m.endpoint(), peer, params);
            Connection c = new Connection(link, qp, m.endpoint().privateData(), peer);
            qp.connect(link);
            return c;
        } catch (IOException | RuntimeException e) {
            if (memory != null) {
                memory.close();
            }
            ch.close();
            throw e;
        }
    }

    CmMessage.Endpoint endpoint(QueuePair qp, ConnectionParameters params) {
        return new CmMessage.Endpoint(deviceId, pid, table.file(), qp.number(), qp.generation, qp.pd.id(), params.rnrRetryCount(), params.privateData());
    }

    PeerMemory openPeer(CmMessage.Endpoint peer, String address) throws IOException {
        String who = String.format("pid %d at %s", peer.pid(), address);
        Path dir = settings.shmDirectory().toAbsolutePath().normalize();
        Path t = peer.table().toAbsolutePath().normalize();
        if (!t.getParent().equals(dir) || !t.getFileName().toString().startsWith(FILE_PREFIX)) {
            throw new IOException("rdma-sim: peer " + who + " announced its table at " + t + ", outside this device's shared memory directory " + dir
                    + " (both ends must use the same directory, on the same host)");
        }
        try {
            return PeerMemory.open(t, peer.deviceId(), "peer " + who, owner, settings.mappedWrites());
        } catch (IOException e) {
            throw new IOException("rdma-sim: cannot map the memory of peer " + who + ": " + e.getMessage()
                    + " (the fabric works between processes on one host)", e);
        }
    }

    // ---- timers, link ----

    SharedTable table() {
        return table;
    }

    LinkModel linkModel() {
        return linkModel;
    }

    /** Runs {@code task} on the device's timer thread after the delay; null once the device is closed. */
    ScheduledFuture<?> schedule(Runnable task, long delay, TimeUnit unit) {
        try {
            return timers.schedule(() -> {
                try {
                    task.run();
                } catch (RuntimeException e) {
                    log.error("rdma-sim: timer task failed", e);
                }
            }, delay, unit);
        } catch (RejectedExecutionException e) {
            return null;
        }
    }

    void schedule(Runnable task, Duration delay) {
        schedule(task, delay.toNanos(), TimeUnit.NANOSECONDS);
    }

    // ---- close ----

    /**
     * Closes the device: listeners, connections (the peers see an orderly disconnect), queue pairs,
     * regions, shared memory it allocated (files deleted), and its table. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (ConnectionListener l : List.copyOf(listeners)) {
            try {
                l.close();
            } catch (IOException e) {
                log.debug("closing {}: {}", l, e.toString());
            }
        }
        List<QueuePair> qps = new ArrayList<>();
        synchronized (lock) {
            for (QueuePair qp : queuePairs) {
                if (qp != null) {
                    qps.add(qp);
                }
            }
        }
        for (QueuePair qp : qps) {
            qp.close();
        }
        // the registered regions, through their protection domains: not a walk of all the table's slots
        // (65,536 by default), which made close hot enough for the JIT to compile during a migration
        List<MemoryRegion> live = new ArrayList<>();
        for (ProtectionDomain pd : pds) {
            live.addAll(pd.regions);
        }
        for (MemoryRegion mr : live) {
            if (mr.isRegistered()) {
                try {
                    deregister(mr);
                } catch (VerbsException e) {
                    // deregistered concurrently
                }
            }
        }
        List<SharedMemory> sms = new ArrayList<>();
        synchronized (lock) {
            for (SharedMemory sm : shared) {
                if (sm != null && sm.generation() != 0) {
                    sms.add(sm);
                }
            }
        }
        for (SharedMemory sm : sms) {
            releaseShared(sm);
        }
        // let the transmit threads say goodbye to the peers, then close what is left
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
        for (Link l : List.copyOf(links)) {
            l.awaitTransmitted(deadline);
            l.forceClose();
        }
        timers.shutdownNow();
        try {
            Files.deleteIfExists(table.file());
        } catch (IOException e) {
            log.warn("rdma-sim: cannot delete {}: {}", table.file(), e.getMessage());
        }
        arena.close();
        log.debug("closed {}", name);
    }

    @Override
    public String toString() {
        return name;
    }
}
