package io.modemu.virtio.blk;

import io.modemu.aio.AioContext;
import io.modemu.block.BlockBackend;
import io.modemu.device.Device;
import io.modemu.device.DeviceType;
import io.modemu.machine.Machine;
import io.modemu.options.ConfigurationException;
import io.modemu.options.Options;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code -device virtio-blk-device,drive=ID[,iothread=IO][,num-queues=N][,queue-size=N][,werror=…][,rerror=…][,serial=…]
 * [,logical_block_size=N]}: a virtio-blk device on the next free virtio-mmio slot.
 *
 * <p>Queues spread over IOThreads with QEMU's {@code iothread-vq-mapping} in its flattened form:
 * {@code iothread-vq-mapping.0.iothread=io0,iothread-vq-mapping.1.iothread=io1} assigns queues round
 * robin; adding {@code iothread-vq-mapping.N.vqs.M=Q} lists the queues of each IOThread explicitly
 * (then for every entry, each queue exactly once). The block backend runs in the first IOThread.
 */
public final class VirtioBlkDeviceType implements DeviceType {
    private static final Pattern MAPPING = Pattern.compile("iothread-vq-mapping\\.(\\d+)\\.(iothread|vqs\\.(\\d+))");

    @Override
    public String name() {
        return VirtioBlkDevice.TYPE;
    }

    @Override
    public String description() {
        return "virtio-blk block device on virtio-mmio (VIRTIO 1.2), with an IOThread dataplane";
    }

    @Override
    public Device create(Machine machine, String id, Options options) {
        BlockBackend backend = machine.blockBackend(options.string("drive"));
        int numQueues = (int) options.integer("num-queues", 1, 1, 64);
        int queueSize = (int) options.integer("queue-size", 256, 4, 1024);
        if (Integer.bitCount(queueSize) != 1) {
            throw new ConfigurationException(options.context() + ": option 'queue-size' must be a power of two, not " + queueSize);
        }
        ErrorPolicy werror = ErrorPolicy.fromName(options.choice("werror", "enospc", ErrorPolicy.NAMES));
        ErrorPolicy rerror = ErrorPolicy.fromName(options.choice("rerror", "report", ErrorPolicy.NAMES));
        if (rerror == ErrorPolicy.ENOSPC) {
            throw new ConfigurationException(options.context() + ": option 'rerror' cannot be enospc (reads do not run out of space)");
        }
        String serial = options.string("serial", null);
        int lbs = (int) options.integer("logical_block_size", 512, 512, 32768);
        if (Integer.bitCount(lbs) != 1) {
            throw new ConfigurationException(options.context() + ": option 'logical_block_size' must be a power of two, not " + lbs);
        }
        if (backend.size() % lbs != 0) {
            throw new ConfigurationException(options.context() + ": drive '" + backend.id() + "' has " + backend.size()
                    + " bytes, not a multiple of logical_block_size " + lbs);
        }
        List<AioContext> contexts = queueContexts(machine, options, numQueues);
        VirtioBlkDevice d = new VirtioBlkDevice(machine, id, backend,
                new VirtioBlkDevice.Settings(numQueues, queueSize, contexts, werror, rerror, serial, lbs));
        d.realize();
        return d;
    }

    /** The context of each queue, or null when every queue runs on the main loop. */
    private static List<AioContext> queueContexts(Machine machine, Options options, int numQueues) {
        String single = options.string("iothread", null);
        TreeMap<Integer, String> threads = new TreeMap<>();
        TreeMap<Integer, TreeMap<Integer, Integer>> vqs = new TreeMap<>();
        for (String key : options.asMap().keySet()) {
            Matcher m = MAPPING.matcher(key);
            if (!m.matches()) {
                continue;
            }
            int entry = Integer.parseInt(m.group(1));
            if (m.group(3) == null) {
                threads.put(entry, options.string(key));
            } else {
                int q = (int) options.integer(key, 0, 0, numQueues - 1);
                vqs.computeIfAbsent(entry, k -> new TreeMap<>()).put(Integer.parseInt(m.group(3)), q);
            }
        }
        if (threads.isEmpty() && !vqs.isEmpty()) {
            throw new ConfigurationException(options.context() + ": iothread-vq-mapping.N.vqs given without iothread-vq-mapping.N.iothread");
        }
        if (single != null && !threads.isEmpty()) {
            throw new ConfigurationException(options.context() + ": give either 'iothread' or 'iothread-vq-mapping', not both");
        }
        if (single != null) {
            AioContext ctx = machine.iothread(single);
            List<AioContext> l = new ArrayList<>();
            for (int q = 0; q < numQueues; q++) {
                l.add(ctx);
            }
            return l;
        }
        if (threads.isEmpty()) {
            return null;
        }
        List<Integer> entries = new ArrayList<>(threads.keySet());
        for (int i = 0; i < entries.size(); i++) {
            if (entries.get(i) != i) {
                throw new ConfigurationException(options.context() + ": iothread-vq-mapping entries must be numbered 0.." + (entries.size() - 1)
                        + ", entry " + i + " is missing");
            }
        }
        for (Integer e : vqs.keySet()) {
            if (!threads.containsKey(e)) {
                throw new ConfigurationException(options.context() + ": iothread-vq-mapping." + e + ".vqs given without iothread-vq-mapping." + e + ".iothread");
            }
        }
        AioContext[] byQueue = new AioContext[numQueues];
        if (vqs.isEmpty()) {
            for (int q = 0; q < numQueues; q++) {
                byQueue[q] = machine.iothread(threads.get(q % threads.size()));
            }
        } else {
            if (vqs.size() != threads.size()) {
                throw new ConfigurationException(options.context() + ": iothread-vq-mapping: give 'vqs' for every entry or for none");
            }
            for (var e : vqs.entrySet()) {
                AioContext ctx = machine.iothread(threads.get(e.getKey()));
                for (int q : e.getValue().values()) {
                    if (byQueue[q] != null) {
                        throw new ConfigurationException(options.context() + ": iothread-vq-mapping assigns queue " + q + " twice");
                    }
                    byQueue[q] = ctx;
                }
            }
            for (int q = 0; q < numQueues; q++) {
                if (byQueue[q] == null) {
                    throw new ConfigurationException(options.context() + ": iothread-vq-mapping assigns no IOThread to queue " + q);
                }
            }
        }
        return List.of(byQueue);
    }
}
