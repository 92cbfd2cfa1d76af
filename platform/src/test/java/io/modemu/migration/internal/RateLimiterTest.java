package io.modemu.migration.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class RateLimiterTest {
    private static final long MIB = 1 << 20;

    /** Bytes a sender gets through in {@code millis} when it asks in pieces of {@code piece} bytes. */
    private static long sentWithin(long limit, long piece, long millis) {
        RateLimiter limiter = new RateLimiter(() -> limit, new Abort());
        long end = System.nanoTime() + millis * 1_000_000;
        long sent = 0;
        while (System.nanoTime() < end) {
            limiter.acquire(piece, null);
            if (System.nanoTime() < end) {
                sent += piece;
            }
        }
        return sent;
    }

    @Test
    void recordsLargerThanAPeriodsBudgetDoNotOvershootTheLimit() {
        // 1 MiB records against 4 MiB/s (a period's budget is 0.4 MiB): the overspend is paid by the next
        // periods, so about 4 MiB go in a second, plus at most the one record that opened the first period
        long sent = sentWithin(4 * MIB, MIB, 1_000);
        assertThat(sent).isLessThanOrEqualTo(4 * MIB + MIB);
    }

    @Test
    void smallPiecesGetAboutTheLimit() {
        long sent = sentWithin(8 * MIB, 4096, 1_000);
        assertThat(sent).isLessThanOrEqualTo(8 * MIB + MIB);
        assertThat(sent).as("a sender that is never slow gets most of its budget").isGreaterThan(4 * MIB);
    }

    @Test
    void noLimitNeverWaits() {
        RateLimiter limiter = new RateLimiter(() -> 0, new Abort());
        for (int i = 0; i < 10_000; i++) {
            limiter.acquire(MIB, null);
        }
    }
}
