package io.modemu.migration.rdmasim.verbs;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class LinkModelTest {
    @Test
    void anIdealLinkDeliversWhenPosted() {
        LinkModel m = new LinkModel(0, 0, () -> 0);
        assertThat(m.isIdeal()).isTrue();
        assertThat(m.reserve(1000, 1 << 30)).isEqualTo(1000);
    }

    @Test
    void bandwidthSerialisesRequestsAndLatencyIsPaidOncePerPipeline() {
        // 1 GB/s: 1 byte per nanosecond; 10 µs one-way latency
        LinkModel m = new LinkModel(10_000, 1_000_000_000L, () -> 0);
        assertThat(m.reserve(0, 4096)).isEqualTo(4096 + 10_000);
        assertThat(m.reserve(0, 4096)).as("posted together: waits for the port, not for the latency").isEqualTo(8192 + 10_000);
        assertThat(m.reserve(1_000_000, 1000)).as("an idle port starts at once").isEqualTo(1_000_000 + 1000 + 10_000);
    }

    @Test
    void aTwoGigabyteRequestDoesNotOverflow() {
        LinkModel m = new LinkModel(0, 1, () -> 0);
        assertThat(m.reserve(0, Integer.MAX_VALUE)).isEqualTo(Integer.MAX_VALUE * 1_000_000_000L);
    }
}
