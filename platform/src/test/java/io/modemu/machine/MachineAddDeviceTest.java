package io.modemu.machine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.aio.DeterministicScheduler;
import io.modemu.device.Device;
import io.modemu.device.DeviceType;
import io.modemu.options.ConfigurationException;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import org.junit.jupiter.api.Test;

class MachineAddDeviceTest {
    /** A device type that reads one option, {@code size}, and counts realized devices. */
    private static final class SizedType implements DeviceType {
        final java.util.concurrent.atomic.AtomicInteger live = new java.util.concurrent.atomic.AtomicInteger();

        @Override
        public String name() {
            return "sized";
        }

        @Override
        public String description() {
            return "test device with one option";
        }

        @Override
        public Device create(Machine machine, String id, Options options) {
            long size = options.integer("size", 1, 1, 100);
            live.incrementAndGet();
            return new Device() {
                @Override
                public void unrealize() {
                    live.decrementAndGet();
                }

                @Override
                public String id() {
                    return id;
                }

                @Override
                public String typeName() {
                    return "sized:" + size;
                }
            };
        }
    }

    private final SizedType type = new SizedType();

    private Machine machine() {
        return Machine.builder().ram(1 << 20).vcpus(0).loopDriver(new DeterministicScheduler(1))
                .contributions(Contributions.builder().add(type).build()).build();
    }

    @Test
    void optionsTheDeviceReadAreAccepted() {
        try (Machine m = machine()) {
            Device d = m.addDevice(Options.parse("-device", "sized,size=7", "driver"));
            assertThat(d.typeName()).isEqualTo("sized:7");
        }
    }

    @Test
    void optionsNobodyReadAreRejectedNamingTheKey() {
        try (Machine m = machine()) {
            assertThatThrownBy(() -> m.addDevice(Options.parse("-device", "sized,size=7,colour=red", "driver")))
                    .isInstanceOf(ConfigurationException.class).hasMessageContaining("unknown option 'colour'");
            assertThat(m.devices()).isEmpty();
            assertThat(type.live.get()).as("the refused device was unrealized").isZero();
        }
    }
}
