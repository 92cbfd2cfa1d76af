package io.modemu.migration.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.migration.Migratable;
import io.modemu.migration.MigrationStreamException;
import io.modemu.migration.StateReader;
import io.modemu.migration.StateWriter;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The configuration section: round trip, untrusted bytes, and every mismatch named. */
class MachineConfigTest {
    private static Migratable section(String name, int version, int min, Map<String, String> settings) {
        return new Migratable() {
            @Override
            public String stateName() {
                return name;
            }

            @Override
            public int stateVersion() {
                return version;
            }

            @Override
            public int minimumStateVersion() {
                return min;
            }

            @Override
            public Map<String, String> settings() {
                return settings;
            }

            @Override
            public void saveState(StateWriter out) {
            }

            @Override
            public void loadState(StateReader in, int v) {
            }
        };
    }

    private static MachineConfig config(long ram, List<MachineConfig.Section> sections, List<MachineConfig.DeviceEntry> devices) {
        return new MachineConfig("virt", List.of(new MachineConfig.Block("ram", ram)), sections, devices,
                List.of(new MachineConfig.Drive("d0", 1 << 20, false)), 2, false);
    }

    private static final MachineConfig.Section RAM = new MachineConfig.Section(0, "ram", 1, true, Map.of());

    @Test
    void roundTrips() {
        MachineConfig c = config(8 << 20, List.of(RAM, new MachineConfig.Section(1, "blk:d", 3, false, Map.of("queue", "64"))),
                List.of(new MachineConfig.DeviceEntry("d", "blk")));
        assertThat(MachineConfig.decode(c.encode())).isEqualTo(c);
    }

    @Test
    void malformedBytesFailNamingTheSection() {
        byte[] good = config(8 << 20, List.of(RAM), List.of()).encode();
        for (int n = 0; n < good.length; n++) {
            byte[] cut = Arrays.copyOf(good, n);
            assertThatThrownBy(() -> MachineConfig.decode(cut)).isInstanceOf(MigrationStreamException.class).hasMessageStartingWith("section 'configuration': ");
        }
        byte[] longer = Arrays.copyOf(good, good.length + 1);
        assertThatThrownBy(() -> MachineConfig.decode(longer)).hasMessage("section 'configuration': 1 unexpected trailing bytes");
    }

    @Test
    void everyDifferenceIsNamed() {
        Map<String, Migratable> local = Map.of("blk:d", section("blk:d", 2, 2, Map.of("queue", "64")), "net:n", section("net:n", 1, 1, Map.of()));
        MachineConfig mine = config(16 << 20, List.of(RAM), List.of(new MachineConfig.DeviceEntry("d", "blk"), new MachineConfig.DeviceEntry("n", "net")));
        MachineConfig theirs = config(8 << 20, List.of(RAM, new MachineConfig.Section(1, "blk:d", 3, false, Map.of("queue", "128")),
                new MachineConfig.Section(2, "gpu:g", 1, false, Map.of())), List.of(new MachineConfig.DeviceEntry("d", "blk"),
                new MachineConfig.DeviceEntry("g", "gpu")));
        assertThat(theirs.mismatches(mine, local)).containsExactly(
                "RAM block 'ram' is 8388608 bytes on the source and 16777216 bytes here (-m must match)",
                "device 'g' (gpu) of the source is missing here",
                "device 'n' (net) exists here but not on the source",
                "section 'blk:d' has version 3 on the source, newer than this build's 2",
                "section 'blk:d' has settings {queue=128} on the source and {queue=64} here",
                "section 'gpu:g' of the source has no device here (a missing device?)",
                "section 'net:n' of a device here is not in the source's stream");
        MachineConfig old = config(16 << 20, List.of(RAM, new MachineConfig.Section(1, "blk:d", 1, false, Map.of("queue", "64")),
                new MachineConfig.Section(2, "net:n", 1, false, Map.of())), List.of(new MachineConfig.DeviceEntry("d", "blk"),
                new MachineConfig.DeviceEntry("n", "net")));
        assertThat(old.mismatches(mine, local)).containsExactly("section 'blk:d' has version 1 on the source, older than the oldest this build loads (2)");
    }
}
