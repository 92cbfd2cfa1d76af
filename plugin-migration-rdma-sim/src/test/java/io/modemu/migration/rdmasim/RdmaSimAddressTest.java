package io.modemu.migration.rdmasim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.modemu.options.ConfigurationException;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class RdmaSimAddressTest {
    @Test
    void hostPortAndOptionsAreParsed() {
        RdmaSimAddress a = RdmaSimAddress.parse("127.0.0.1:4444,pin-all=on,latency=2us,bandwidth=12.5G,shm=/tmp/x");
        assertThat(a.host()).isEqualTo("127.0.0.1");
        assertThat(a.port()).isEqualTo(4444);
        assertThat(a.pinAll()).isTrue();
        assertThat(a.fabric().latency()).isEqualTo(Duration.ofNanos(2000));
        assertThat(a.fabric().bandwidthBytesPerSecond()).isEqualTo((long) (12.5 * (1L << 30)));
        assertThat(a.fabric().shmDirectory()).isEqualTo(Path.of("/tmp/x"));
        assertThat(a.fabric().mappedWrites()).isTrue();
        assertThat(RdmaSimAddress.parse("h:1,copy=pwrite").fabric().mappedWrites()).isFalse();
        assertThat(RdmaSimAddress.parse("h:1,copy=map").fabric().mappedWrites()).isTrue();
        RdmaSimAddress plain = RdmaSimAddress.parse("[::1]:0");
        assertThat(plain.host()).isEqualTo("::1");
        assertThat(plain.pinAll()).isFalse();
        assertThat(plain.hostPort(5)).isEqualTo("[::1]:5");
    }

    @Test
    void mistakesAreNamed() {
        assertThatThrownBy(() -> RdmaSimAddress.parse("localhost")).isInstanceOf(ConfigurationException.class).hasMessageContaining("HOST:PORT");
        assertThatThrownBy(() -> RdmaSimAddress.parse("h:99999")).hasMessageContaining("port '99999'");
        assertThatThrownBy(() -> RdmaSimAddress.parse("h:1,pin-all=maybe")).hasMessageContaining("pin-all=maybe: expected on or off");
        assertThatThrownBy(() -> RdmaSimAddress.parse("h:1,latency=5")).hasMessageContaining("needs a unit");
        assertThatThrownBy(() -> RdmaSimAddress.parse("h:1,colour=blue")).hasMessageContaining("unknown option 'colour'");
        assertThatThrownBy(() -> RdmaSimAddress.parse("h:1,bandwidth=fast")).hasMessageContaining("bandwidth");
        assertThatThrownBy(() -> RdmaSimAddress.parse("h:1,copy=dma")).isInstanceOf(ConfigurationException.class)
                .hasMessageContaining("copy=dma: expected map or pwrite");
    }
}
