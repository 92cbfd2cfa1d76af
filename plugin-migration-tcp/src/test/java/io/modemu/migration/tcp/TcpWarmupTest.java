package io.modemu.migration.tcp;

import static org.assertj.core.api.Assertions.assertThatCode;

import org.junit.jupiter.api.Test;

class TcpWarmupTest {
    @Test
    void theWarmUpConnectsAndExchangesBytesBothWaysOverLoopback() {
        assertThatCode(() -> TcpWarmup.roundTrip(new TcpTransport())).doesNotThrowAnyException();
    }
}
