package io.modemu.migration.internal;

import io.modemu.block.BlockBackend;
import io.modemu.device.Device;
import io.modemu.machine.Machine;
import io.modemu.machine.RamBlock;
import io.modemu.migration.Migratable;
import io.modemu.migration.StateReader;
import io.modemu.migration.StateWriter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The configuration section: what the destination must match before anything touches its guest
 * RAM — machine type, RAM blocks, devices, drives, and the section table (RAM and every device
 * section with its version and settings). Also carries how the stream is laid out (data channels,
 * one-sided RAM).
 *
 * @param dataChannels parallel data channels that carry the pages ({@code multifd}), 0 for none
 * @param remoteRam    whether non-zero pages are written one-sided ({@link io.modemu.migration.RemoteRamWriter})
 */
record MachineConfig(String machineType, List<Block> ram, List<Section> sections, List<DeviceEntry> devices, List<Drive> drives,
                     int dataChannels, boolean remoteRam) {
    record Block(String name, long size) {
    }

    /** A section of the stream: id 0 is RAM (iterative), the others one-shot device sections. */
    record Section(int id, String name, int version, boolean iterative, Map<String, String> settings) {
    }

    record DeviceEntry(String id, String type) {
    }

    record Drive(String id, long size, boolean readOnly) {
    }

    private static final String NAME = "configuration";
    private static final int MAX_ITEMS = 4096;
    private static final int MAX_NAME = 1024;

    /** Describes {@code machine} with {@code states} as its device sections. Runs on the main loop. */
    static MachineConfig of(Machine machine, List<Migratable> states, int dataChannels, boolean remoteRam) {
        machine.mainLoop().assertInThread();
        List<Block> ram = new ArrayList<>();
        for (RamBlock b : machine.memory().blocks()) {
            ram.add(new Block(b.name(), b.size()));
        }
        List<Section> sections = new ArrayList<>();
        sections.add(new Section(0, Wire.RAM_SECTION, Wire.RAM_VERSION, true, Map.of()));
        for (int i = 0; i < states.size(); i++) {
            Migratable m = states.get(i);
            if (m.stateName().equals(Wire.RAM_SECTION)) {
                throw new IllegalStateException("a device registered the state section name 'ram', which is RAM's");
            }
            sections.add(new Section(i + 1, m.stateName(), m.stateVersion(), false, new TreeMap<>(m.settings())));
        }
        List<DeviceEntry> devices = new ArrayList<>();
        for (Device d : machine.devices().values()) {
            devices.add(new DeviceEntry(d.id(), d.typeName()));
        }
        List<Drive> drives = new ArrayList<>();
        for (BlockBackend b : machine.blockBackends().values()) {
            drives.add(new Drive(b.id(), b.size(), b.isReadOnly()));
        }
        return new MachineConfig(machine.type(), ram, sections, devices, drives, dataChannels, remoteRam);
    }

    byte[] encode() {
        StateWriter w = new StateWriter();
        w.string(machineType);
        w.u16(ram.size());
        for (Block b : ram) {
            w.string(b.name()).u64(b.size());
        }
        w.u16(sections.size());
        for (Section s : sections) {
            w.u32(s.id()).string(s.name()).u32(s.version()).bool(s.iterative()).u16(s.settings().size());
            s.settings().forEach((k, v) -> w.string(k).string(v));
        }
        w.u16(devices.size());
        for (DeviceEntry d : devices) {
            w.string(d.id()).string(d.type());
        }
        w.u16(drives.size());
        for (Drive d : drives) {
            w.string(d.id()).u64(d.size()).bool(d.readOnly());
        }
        w.u16(dataChannels).bool(remoteRam);
        return w.toByteArray();
    }

    /** @throws io.modemu.migration.MigrationStreamException naming the section and the field when the bytes are malformed */
    static MachineConfig decode(byte[] bytes) {
        StateReader r = new StateReader(NAME, bytes);
        String type = r.string("machine type", MAX_NAME);
        int nBlocks = (int) count(r, "RAM block count", 1);
        List<Block> ram = new ArrayList<>();
        for (int i = 0; i < nBlocks; i++) {
            String name = r.string("RAM block name", MAX_NAME);
            long size = r.u64("size of RAM block '" + name + "'");
            if (size <= 0 || size % Wire.PAGE != 0) {
                throw r.fail("size of RAM block '" + name + "'", "is " + size + ", not a positive multiple of " + Wire.PAGE);
            }
            ram.add(new Block(name, size));
        }
        int nSections = (int) count(r, "section count", 1);
        List<Section> sections = new ArrayList<>();
        Set<Long> ids = new HashSet<>();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < nSections; i++) {
            long id = r.u32("section id", 0, 0xffff);
            String name = r.string("section name", MAX_NAME);
            long version = r.u32("version of section '" + name + "'");
            boolean iterative = r.bool("kind of section '" + name + "'");
            int nSettings = (int) count(r, "setting count of section '" + name + "'", 0);
            Map<String, String> settings = new TreeMap<>();
            for (int j = 0; j < nSettings; j++) {
                settings.put(r.string("setting name", MAX_NAME), r.string("setting value", MAX_NAME));
            }
            if (!ids.add(id) || !names.add(name)) {
                throw r.fail("section '" + name + "'", "appears twice (id " + id + ")");
            }
            sections.add(new Section((int) id, name, (int) Math.min(version, Integer.MAX_VALUE), iterative, settings));
        }
        int nDevices = (int) count(r, "device count", 0);
        List<DeviceEntry> devices = new ArrayList<>();
        for (int i = 0; i < nDevices; i++) {
            devices.add(new DeviceEntry(r.string("device id", MAX_NAME), r.string("device type", MAX_NAME)));
        }
        int nDrives = (int) count(r, "drive count", 0);
        List<Drive> drives = new ArrayList<>();
        for (int i = 0; i < nDrives; i++) {
            drives.add(new Drive(r.string("drive id", MAX_NAME), r.u64("drive size"), r.bool("drive read-only flag")));
        }
        int channels = r.u16("data channel count");
        if (channels > 255) {
            throw r.fail("data channel count", "is " + channels + ", more than 255");
        }
        boolean remote = r.bool("one-sided RAM flag");
        r.expectEnd();
        return new MachineConfig(type, ram, sections, devices, drives, channels, remote);
    }

    private static long count(StateReader r, String field, int min) {
        long n = r.u16(field);
        if (n < min || n > MAX_ITEMS) {
            throw r.fail(field, "is " + n + ", outside " + min + ".." + MAX_ITEMS);
        }
        return n;
    }

    /**
     * What differs between this configuration (the source's) and the destination's machine, each item
     * naming the culprit; empty when the destination can take the stream.
     *
     * @param local       the destination, described with {@link #of}
     * @param localStates the destination's device sections, by name
     */
    List<String> mismatches(MachineConfig local, Map<String, Migratable> localStates) {
        List<String> out = new ArrayList<>();
        if (!machineType.equals(local.machineType)) {
            out.add("machine type is '" + machineType + "' on the source and '" + local.machineType + "' here");
        }
        if (ram.size() != local.ram.size()) {
            out.add("the source has " + ram.size() + " RAM block(s), this machine " + local.ram.size());
        }
        for (int i = 0; i < Math.min(ram.size(), local.ram.size()); i++) {
            Block s = ram.get(i);
            Block d = local.ram.get(i);
            if (!s.name().equals(d.name())) {
                out.add("RAM block " + i + " is '" + s.name() + "' on the source and '" + d.name() + "' here");
            } else if (s.size() != d.size()) {
                out.add("RAM block '" + s.name() + "' is " + s.size() + " bytes on the source and " + d.size() + " bytes here (-m must match)");
            }
        }
        Map<String, String> localDevices = new LinkedHashMap<>();
        for (DeviceEntry d : local.devices) {
            localDevices.put(d.id(), d.type());
        }
        Set<String> sourceDevices = new HashSet<>();
        for (DeviceEntry d : devices) {
            sourceDevices.add(d.id());
            String t = localDevices.get(d.id());
            if (t == null) {
                out.add("device '" + d.id() + "' (" + d.type() + ") of the source is missing here");
            } else if (!t.equals(d.type())) {
                out.add("device '" + d.id() + "' is a " + d.type() + " on the source and a " + t + " here");
            }
        }
        for (DeviceEntry d : local.devices) {
            if (!sourceDevices.contains(d.id())) {
                out.add("device '" + d.id() + "' (" + d.type() + ") exists here but not on the source");
            }
        }
        Map<String, Drive> localDrives = new HashMap<>();
        for (Drive d : local.drives) {
            localDrives.put(d.id(), d);
        }
        Set<String> sourceDrives = new HashSet<>();
        for (Drive d : drives) {
            sourceDrives.add(d.id());
            Drive l = localDrives.get(d.id());
            if (l == null) {
                out.add("drive '" + d.id() + "' of the source is missing here");
            } else if (l.size() != d.size()) {
                out.add("drive '" + d.id() + "' is " + d.size() + " bytes on the source and " + l.size() + " bytes here");
            }
        }
        for (Drive d : local.drives) {
            if (!sourceDrives.contains(d.id())) {
                out.add("drive '" + d.id() + "' exists here but not on the source");
            }
        }
        Set<String> sourceSections = new HashSet<>();
        for (Section s : sections) {
            sourceSections.add(s.name());
            if (s.iterative()) {
                if (!s.name().equals(Wire.RAM_SECTION)) {
                    out.add("iterative section '" + s.name() + "' of the source is unknown here (this build migrates only 'ram' iteratively)");
                } else if (s.version() > Wire.RAM_VERSION || s.version() < 1) {
                    out.add("section 'ram' has version " + s.version() + " on the source; this build loads version " + Wire.RAM_VERSION);
                }
                continue;
            }
            Migratable m = localStates.get(s.name());
            if (m == null) {
                out.add("section '" + s.name() + "' of the source has no device here (a missing device?)");
                continue;
            }
            if (s.version() > m.stateVersion()) {
                out.add("section '" + s.name() + "' has version " + s.version() + " on the source, newer than this build's " + m.stateVersion());
            } else if (s.version() < m.minimumStateVersion()) {
                out.add("section '" + s.name() + "' has version " + s.version() + " on the source, older than the oldest this build loads ("
                        + m.minimumStateVersion() + ")");
            }
            Map<String, String> mine = new TreeMap<>(m.settings());
            if (!mine.equals(s.settings())) {
                out.add("section '" + s.name() + "' has settings " + s.settings() + " on the source and " + mine + " here");
            }
        }
        if (!sourceSections.contains(Wire.RAM_SECTION)) {
            out.add("the source sends no 'ram' section");
        }
        for (String name : localStates.keySet()) {
            if (!sourceSections.contains(name)) {
                out.add("section '" + name + "' of a device here is not in the source's stream");
            }
        }
        return out;
    }

    /** The device section with stream id {@code id}, or null. */
    Section section(int id) {
        for (Section s : sections) {
            if (s.id() == id) {
                return s;
            }
        }
        return null;
    }
}
