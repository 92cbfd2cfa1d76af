package io.modemu.virtio;

import io.modemu.device.MmioDevice;
import io.modemu.machine.GuestMemory;
import io.modemu.machine.IrqLine;
import io.modemu.migration.StateReader;
import io.modemu.migration.StateWriter;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The virtio-mmio transport, version 2 (VIRTIO 1.2, 4.2.2): the register file a guest driver sees in
 * one virtio-mmio slot, the status handshake, feature negotiation, queue configuration, configuration
 * space with its generation, and the interrupt status with its line.
 *
 * <p>Feature negotiation follows QEMU: when the driver accepts VIRTIO_F_VERSION_1, FEATURES_OK stays
 * clear if it accepted a feature the device does not offer; a driver that does not accept VERSION_1
 * (a legacy driver) has its features masked to the offered ones instead, and a device error then
 * marks the device broken without DEVICE_NEEDS_RESET (which legacy drivers do not know).
 *
 * <p>Threads. Register accesses come from vCPU threads and are serialized by this object's lock,
 * except QueueNotify, which is lock-free. {@link #raiseUsedBuffer()} (a request completed) is
 * lock-free and may be called from any thread, an IOThread in particular: delivering an interrupt
 * never waits for anything. {@link #deviceError} takes the lock briefly. The state methods run on the
 * main loop with the VM stopped.
 */
public final class VirtioMmioTransport implements MmioDevice {
    private static final Logger log = LoggerFactory.getLogger(VirtioMmioTransport.class);
    private static final int MAX_GUEST_ERROR_LOGS = 16;

    private final String name;
    private final GuestMemory memory;
    private final IrqLine irq;
    private final VirtioDevice device;
    private final int numQueues;
    private final AtomicInteger interruptStatus = new AtomicInteger();
    private final AtomicInteger guestErrorLogs = new AtomicInteger();

    // registers, guarded by this
    private volatile int status;
    private int deviceFeaturesSel;
    private int driverFeaturesSel;
    private long driverFeatures;
    private long negotiated;
    private int queueSel;
    private int shmSel;
    private int configGeneration;
    private boolean resetting;
    private volatile boolean broken;
    private final int[] queueNum;
    private final boolean[] queueReady;
    private final long[] queueDesc;
    private final long[] queueAvail;
    private final long[] queueUsed;

    public VirtioMmioTransport(String name, GuestMemory memory, IrqLine irq, VirtioDevice device) {
        this.name = name;
        this.memory = memory;
        this.irq = irq;
        this.device = device;
        this.numQueues = device.numQueues();
        this.queueNum = new int[numQueues];
        this.queueReady = new boolean[numQueues];
        this.queueDesc = new long[numQueues];
        this.queueAvail = new long[numQueues];
        this.queueUsed = new long[numQueues];
    }

    public String name() {
        return name;
    }

    /** The device status register as the driver reads it. Any thread. */
    public int status() {
        return status;
    }

    /** The features both sides agreed on (valid once FEATURES_OK is set). */
    public synchronized long negotiatedFeatures() {
        return negotiated;
    }

    /** Whether the device hit a guest error and serves nothing until the driver resets it. Any thread. */
    public boolean isBroken() {
        return broken;
    }

    /** The InterruptStatus register. Any thread. */
    public int interruptStatus() {
        return interruptStatus.get();
    }

    public synchronized int configGeneration() {
        return configGeneration;
    }

    // ---- interrupts ----

    /** Signals a used buffer to the driver. Any thread, lock-free (QEMU's irqfd). */
    public void raiseUsedBuffer() {
        raise(Virtio.INT_VRING);
    }

    private void raise(int bits) {
        interruptStatus.getAndUpdate(v -> v | bits);
        irq.raise();
    }

    private void ack(int bits) {
        if (interruptStatus.updateAndGet(v -> v & ~bits) == 0) {
            irq.lower();
            // a completion may have set a bit between the update and the lower: never lose it
            if (interruptStatus.get() != 0) {
                irq.raise();
            }
        }
    }

    /**
     * The guest broke the protocol: log it (rate-limited), stop serving until reset, and tell the
     * driver as the specification asks: DEVICE_NEEDS_RESET and, once DRIVER_OK is set, a
     * configuration change interrupt. Legacy drivers only see the device stop (as with QEMU). Any
     * thread; takes the lock briefly.
     */
    public void deviceError(String message) {
        if (guestErrorLogs.getAndIncrement() < MAX_GUEST_ERROR_LOGS) {
            log.warn("{}: guest error, the device needs a reset: {}", name, message);
        }
        synchronized (this) {
            if (resetting) {
                return;
            }
            broken = true;
            if (Virtio.has(negotiated, Virtio.F_VERSION_1) || (status & Virtio.STATUS_FEATURES_OK) == 0) {
                status |= Virtio.STATUS_DEVICE_NEEDS_RESET;
                if ((status & Virtio.STATUS_DRIVER_OK) != 0) {
                    configGeneration++;
                    raise(Virtio.INT_CONFIG);
                }
            }
        }
    }

    private void guestMistake(String message) {
        if (guestErrorLogs.getAndIncrement() < MAX_GUEST_ERROR_LOGS) {
            log.warn("{}: {}", name, message);
        }
    }

    // ---- registers ----

    @Override
    public long mmioRead(long offset, int size) {
        if (offset >= Virtio.R_CONFIG) {
            return readConfig((int) Math.min(Integer.MAX_VALUE, offset - Virtio.R_CONFIG), size);
        }
        if (size != 4 || (offset & 3) != 0) {
            guestMistake("read of " + size + " bytes at register 0x" + Long.toHexString(offset) + ": registers are 32-bit");
            return 0;
        }
        int off = (int) offset;
        switch (off) {
            case Virtio.R_MAGIC:
                return Virtio.MMIO_MAGIC_VALUE;
            case Virtio.R_VERSION:
                return Virtio.MMIO_VERSION;
            case Virtio.R_DEVICE_ID:
                return device.deviceId();
            case Virtio.R_VENDOR_ID:
                return Virtio.MMIO_VENDOR_QEMU;
            case Virtio.R_INTERRUPT_STATUS:
                return interruptStatus.get();
            case Virtio.R_STATUS:
                return status;
            default:
                break;
        }
        synchronized (this) {
            return switch (off) {
                case Virtio.R_DEVICE_FEATURES -> deviceFeaturesSel > 1 ? 0 : (device.deviceFeatures() >>> (32 * deviceFeaturesSel)) & 0xffff_ffffL;
                case Virtio.R_QUEUE_NUM_MAX -> queueSel < numQueues ? device.queueMaxSize() : 0;
                case Virtio.R_QUEUE_READY -> queueSel < numQueues && queueReady[queueSel] ? 1 : 0;
                case Virtio.R_CONFIG_GENERATION -> configGeneration;
                case Virtio.R_SHM_LEN_LOW, Virtio.R_SHM_LEN_HIGH, Virtio.R_SHM_BASE_LOW, Virtio.R_SHM_BASE_HIGH -> 0xffff_ffffL; // no region
                default -> 0;
            };
        }
    }

    private long readConfig(int offset, int size) {
        if (size != 1 && size != 2 && size != 4 && size != 8) {
            return 0;
        }
        long v = 0;
        synchronized (this) {
            int n = device.configSize();
            for (int i = size - 1; i >= 0; i--) {
                int at = offset + i;
                v = v << 8 | (at >= 0 && at < n ? device.readConfig(at) & 0xff : 0);
            }
        }
        return v;
    }

    @Override
    public void mmioWrite(long offset, int size, long value) {
        if (offset >= Virtio.R_CONFIG) {
            synchronized (this) {
                int base = (int) Math.min(Integer.MAX_VALUE, offset - Virtio.R_CONFIG);
                for (int i = 0; i < size && i < 8; i++) {
                    if (base + i < device.configSize()) {
                        device.writeConfig(base + i, (int) (value >>> (8 * i)) & 0xff);
                    }
                }
            }
            return;
        }
        if (size != 4 || (offset & 3) != 0) {
            guestMistake("write of " + size + " bytes at register 0x" + Long.toHexString(offset) + ": registers are 32-bit");
            return;
        }
        int off = (int) offset;
        long v = value & 0xffff_ffffL;
        if (off == Virtio.R_QUEUE_NOTIFY) {
            notifyQueue((int) Math.min(v, Integer.MAX_VALUE));
            return;
        }
        if (off == Virtio.R_INTERRUPT_ACK) {
            ack((int) v);
            return;
        }
        synchronized (this) {
            if (resetting) {
                guestMistake("write to register 0x" + Integer.toHexString(off) + " while a reset is in progress (read Status until it is 0)");
                return;
            }
            switch (off) {
                case Virtio.R_DEVICE_FEATURES_SEL -> deviceFeaturesSel = (int) v;
                case Virtio.R_DRIVER_FEATURES_SEL -> driverFeaturesSel = (int) v;
                case Virtio.R_DRIVER_FEATURES -> writeDriverFeatures(v);
                case Virtio.R_QUEUE_SEL -> queueSel = (int) Math.min(v, Integer.MAX_VALUE);
                case Virtio.R_QUEUE_NUM -> {
                    if (queueWritable("QueueNum")) {
                        if (v > device.queueMaxSize()) {
                            // not kept: the register only ever holds a size the device could serve, so that its state
                            // always loads on a migration destination (which checks it)
                            deviceError("queue " + queueSel + ": QueueNum " + v + " is above QueueNumMax " + device.queueMaxSize());
                        } else {
                            queueNum[queueSel] = (int) v;
                        }
                    }
                }
                case Virtio.R_QUEUE_READY -> writeQueueReady(v);
                case Virtio.R_STATUS -> writeStatus((int) v & 0xff);
                case Virtio.R_QUEUE_DESC_LOW -> setLow(queueDesc, v, "QueueDescLow");
                case Virtio.R_QUEUE_DESC_HIGH -> setHigh(queueDesc, v, "QueueDescHigh");
                case Virtio.R_QUEUE_DRIVER_LOW -> setLow(queueAvail, v, "QueueDriverLow");
                case Virtio.R_QUEUE_DRIVER_HIGH -> setHigh(queueAvail, v, "QueueDriverHigh");
                case Virtio.R_QUEUE_DEVICE_LOW -> setLow(queueUsed, v, "QueueDeviceLow");
                case Virtio.R_QUEUE_DEVICE_HIGH -> setHigh(queueUsed, v, "QueueDeviceHigh");
                case Virtio.R_SHM_SEL -> shmSel = (int) v;
                default -> guestMistake("write of 0x" + Long.toHexString(v) + " to read-only or unknown register 0x" + Integer.toHexString(off));
            }
        }
    }

    private void notifyQueue(int index) {
        if (index >= numQueues) {
            guestMistake("QueueNotify for queue " + index + ", the device has " + numQueues);
            return;
        }
        if ((status & Virtio.STATUS_DRIVER_OK) == 0) {
            // the device must not consume buffers before DRIVER_OK; it looks at every queue then
            guestMistake("QueueNotify for queue " + index + " before DRIVER_OK, ignored");
            return;
        }
        device.notifyQueue(index);
    }

    private boolean queueWritable(String register) {
        if (queueSel >= numQueues) {
            guestMistake(register + " written for queue " + queueSel + ", the device has " + numQueues);
            return false;
        }
        if (queueReady[queueSel]) {
            guestMistake(register + " written for queue " + queueSel + " while it is ready, ignored");
            return false;
        }
        return true;
    }

    private void setLow(long[] reg, long v, String register) {
        if (queueWritable(register)) {
            reg[queueSel] = (reg[queueSel] & 0xffff_ffff_0000_0000L) | v;
        }
    }

    private void setHigh(long[] reg, long v, String register) {
        if (queueWritable(register)) {
            reg[queueSel] = (reg[queueSel] & 0xffff_ffffL) | (v << 32);
        }
    }

    private void writeDriverFeatures(long v) {
        if ((status & Virtio.STATUS_FEATURES_OK) != 0) {
            guestMistake("DriverFeatures written after FEATURES_OK, ignored");
            return;
        }
        if (driverFeaturesSel == 0) {
            driverFeatures = (driverFeatures & 0xffff_ffff_0000_0000L) | v;
        } else if (driverFeaturesSel == 1) {
            driverFeatures = (driverFeatures & 0xffff_ffffL) | (v << 32);
        } else if (v != 0) {
            guestMistake("DriverFeatures bank " + driverFeaturesSel + " written with 0x" + Long.toHexString(v) + ": no such features");
        }
    }

    private void writeQueueReady(long v) {
        if (queueSel >= numQueues) {
            guestMistake("QueueReady written for queue " + queueSel + ", the device has " + numQueues);
            return;
        }
        int q = queueSel;
        if (v == 0) {
            if (queueReady[q]) {
                queueReady[q] = false;
                guestMistake("queue " + q + " disabled while the device runs; the device stops serving it");
                device.activateQueue(q, null);
            }
            return;
        }
        if (queueReady[q]) {
            return;
        }
        QueueLayout layout = new QueueLayout(queueNum[q], queueDesc[q], queueAvail[q], queueUsed[q]);
        String problem = checkLayout(q, layout);
        if (problem != null) {
            deviceError(problem);
            return;
        }
        queueReady[q] = true;
        if ((status & Virtio.STATUS_DRIVER_OK) != 0 && !broken) {
            device.activateQueue(q, layout);
        }
    }

    private String checkLayout(int q, QueueLayout l) {
        int max = device.queueMaxSize();
        if (l.size() <= 0 || l.size() > max || Integer.bitCount(l.size()) != 1) {
            return "queue " + q + ": QueueNum " + Integer.toUnsignedString(l.size()) + " is not a power of two in 1.." + max;
        }
        if ((l.desc() & 15) != 0 || !memory.isRam(l.desc(), VirtQueue.descBytes(l.size()))) {
            return "queue " + q + ": descriptor table at 0x" + Long.toHexString(l.desc()) + " is misaligned or outside guest RAM";
        }
        if ((l.avail() & 1) != 0 || !memory.isRam(l.avail(), VirtQueue.availBytes(l.size()))) {
            return "queue " + q + ": available ring at 0x" + Long.toHexString(l.avail()) + " is misaligned or outside guest RAM";
        }
        if ((l.used() & 3) != 0 || !memory.isRam(l.used(), VirtQueue.usedBytes(l.size()))) {
            return "queue " + q + ": used ring at 0x" + Long.toHexString(l.used()) + " is misaligned or outside guest RAM";
        }
        return null;
    }

    private void writeStatus(int v) {
        if (v == 0) {
            beginReset();
            return;
        }
        int old = status;
        if ((v & Virtio.STATUS_FEATURES_OK) != 0 && (old & Virtio.STATUS_FEATURES_OK) == 0) {
            long offered = device.deviceFeatures();
            if (Virtio.has(driverFeatures, Virtio.F_VERSION_1)) {
                if ((driverFeatures & ~offered) != 0) {
                    guestMistake("the driver accepted features 0x" + Long.toHexString(driverFeatures & ~offered)
                            + " the device does not offer; FEATURES_OK stays clear");
                    v &= ~Virtio.STATUS_FEATURES_OK;
                } else {
                    negotiated = driverFeatures;
                }
            } else {
                negotiated = driverFeatures & offered;
            }
        }
        // the device keeps DEVICE_NEEDS_RESET until a reset, whatever the driver writes
        int now = v | (old & Virtio.STATUS_DEVICE_NEEDS_RESET);
        status = now;
        if ((now & Virtio.STATUS_DRIVER_OK) != 0 && (old & Virtio.STATUS_DRIVER_OK) == 0) {
            if ((now & Virtio.STATUS_FEATURES_OK) == 0 && Virtio.has(negotiated, Virtio.F_VERSION_1)) {
                guestMistake("DRIVER_OK without FEATURES_OK");
            }
            if (!broken) {
                QueueLayout[] layouts = new QueueLayout[numQueues];
                for (int q = 0; q < numQueues; q++) {
                    if (queueReady[q]) {
                        layouts[q] = new QueueLayout(queueNum[q], queueDesc[q], queueAvail[q], queueUsed[q]);
                    }
                }
                device.start(negotiated, layouts);
            }
        }
    }

    private void beginReset() {
        if (resetting) {
            return;
        }
        resetting = true;
        if (status == 0) {
            // the driver waits for Status to read 0 before it writes again, and writes are dropped until the reset is
            // done: a started device whose Status already reads 0 (its driver cleared its own bits, which the
            // specification forbids) must not say "done" while its queues are still being stopped
            status = Virtio.STATUS_DEVICE_NEEDS_RESET;
        }
        device.reset(this::finishReset);
    }

    private synchronized void finishReset() {
        deviceFeaturesSel = 0;
        driverFeaturesSel = 0;
        driverFeatures = 0;
        negotiated = 0;
        queueSel = 0;
        shmSel = 0;
        for (int q = 0; q < numQueues; q++) {
            queueNum[q] = 0;
            queueReady[q] = false;
            queueDesc[q] = queueAvail[q] = queueUsed[q] = 0;
        }
        broken = false;
        interruptStatus.set(0);
        irq.lower();
        resetting = false;
        status = 0;
    }

    /** Whether a reset is waiting for in-flight requests. */
    public synchronized boolean isResetting() {
        return resetting;
    }

    /** The layout the driver configured for queue {@code q}, or null if it is not ready. */
    public synchronized QueueLayout queueLayout(int q) {
        return queueReady[q] ? new QueueLayout(queueNum[q], queueDesc[q], queueAvail[q], queueUsed[q]) : null;
    }

    // ---- state ----

    /** Writes the registers. Main loop, VM stopped, device drained. */
    public synchronized void saveState(StateWriter out) {
        if (resetting) {
            throw new IllegalStateException(name + ": cannot save state while a device reset waits for requests in flight");
        }
        out.u8(status).u32(deviceFeaturesSel).u32(driverFeaturesSel).u64(driverFeatures).u64(negotiated)
                .u32(queueSel).u32(shmSel).u32(configGeneration).bool(broken).u32(interruptStatus.get()).u16(numQueues);
        for (int q = 0; q < numQueues; q++) {
            out.u32(queueNum[q]).bool(queueReady[q]).u64(queueDesc[q]).u64(queueAvail[q]).u64(queueUsed[q]);
        }
    }

    /** The registers as read from a saved state, checked but not applied. */
    public record Snapshot(int status, int deviceFeaturesSel, int driverFeaturesSel, long driverFeatures, long negotiated, int queueSel,
                           int shmSel, int configGeneration, boolean broken, int interruptStatus, int[] queueNum, boolean[] queueReady,
                           long[] queueDesc, long[] queueAvail, long[] queueUsed) {
        /** The layout of queue {@code q}, or null if it was not ready. */
        public QueueLayout layout(int q) {
            return queueReady[q] ? new QueueLayout(queueNum[q], queueDesc[q], queueAvail[q], queueUsed[q]) : null;
        }
    }

    /**
     * Reads the registers of a saved state and checks every value against this device; changes
     * nothing. Main loop, VM stopped.
     *
     * @throws io.modemu.migration.MigrationStreamException naming the field that does not fit this device
     */
    public Snapshot readState(StateReader in) {
        int st = in.u8("status");
        long dfs = in.u32("device features select");
        long drfs = in.u32("driver features select");
        long drf = in.u64("driver features");
        long neg = in.u64("negotiated features");
        if ((neg & ~device.deviceFeatures()) != 0) {
            throw in.fail("negotiated features", "0x" + Long.toHexString(neg) + " include features this device does not offer (0x"
                    + Long.toHexString(device.deviceFeatures()) + ")");
        }
        long qs = in.u32("queue select");
        long ss = in.u32("shared memory select");
        long gen = in.u32("config generation");
        boolean brk = in.bool("broken");
        long isr = in.u32("interrupt status", 0, Virtio.INT_VRING | Virtio.INT_CONFIG);
        int nq = in.u16("queue count");
        if (nq != numQueues) {
            throw in.fail("queue count", "is " + nq + ", this device has " + numQueues + " queues (num-queues must match)");
        }
        int[] num = new int[nq];
        boolean[] ready = new boolean[nq];
        long[] d = new long[nq];
        long[] a = new long[nq];
        long[] u = new long[nq];
        for (int q = 0; q < nq; q++) {
            num[q] = (int) in.u32("queue " + q + " size", 0, device.queueMaxSize());
            ready[q] = in.bool("queue " + q + " ready");
            d[q] = in.u64("queue " + q + " descriptor table");
            a[q] = in.u64("queue " + q + " available ring");
            u[q] = in.u64("queue " + q + " used ring");
            if (ready[q]) {
                String problem = checkLayout(q, new QueueLayout(num[q], d[q], a[q], u[q]));
                if (problem != null) {
                    throw in.fail("queue " + q, problem);
                }
            }
        }
        return new Snapshot(st, (int) dfs, (int) drfs, drf, neg, (int) qs, (int) ss, (int) gen, brk, (int) isr, num, ready, d, a, u);
    }

    /** Applies a checked {@link #readState snapshot}. Main loop, VM stopped. */
    public synchronized void applyState(Snapshot s) {
        status = s.status();
        deviceFeaturesSel = s.deviceFeaturesSel();
        driverFeaturesSel = s.driverFeaturesSel();
        driverFeatures = s.driverFeatures();
        negotiated = s.negotiated();
        queueSel = s.queueSel();
        shmSel = s.shmSel();
        configGeneration = s.configGeneration();
        broken = s.broken();
        resetting = false;
        for (int q = 0; q < numQueues; q++) {
            queueNum[q] = s.queueNum()[q];
            queueReady[q] = s.queueReady()[q];
            queueDesc[q] = s.queueDesc()[q];
            queueAvail[q] = s.queueAvail()[q];
            queueUsed[q] = s.queueUsed()[q];
        }
        interruptStatus.set(s.interruptStatus());
        if (s.interruptStatus() != 0) {
            irq.raise();
        } else {
            irq.lower();
        }
    }

    @Override
    public String toString() {
        return name + "[status 0x" + Integer.toHexString(status) + "]";
    }
}
