package io.modemu.migration.rdmasim.verbs;

import java.time.Duration;

/**
 * What {@code rdma_connect} / {@code rdma_accept} take ({@code rdma_conn_param}), plus the queue-pair
 * timers the connection manager sets on the way to RTS.
 *
 * @param privateData   up to {@link #MAX_CONNECT_PRIVATE_DATA} bytes with a connect,
 *                      {@link #MAX_ACCEPT_PRIVATE_DATA} with an accept (rdma_cm's limits over InfiniBand)
 * @param retryCount    transport retries (0..7) before a request the peer never acknowledges fails
 *                      with {@link WcStatus#RETRY_EXC_ERR}
 * @param rnrRetryCount receiver-not-ready retries (0..7; 7 retries forever) before a message
 *                      finding no posted receive fails with {@link WcStatus#RNR_RETRY_EXC_ERR}
 * @param minRnrTimer   how long the peer waits between receiver-not-ready retries (the responder's
 *                      {@code min_rnr_timer})
 * @param ackTimeout    how long to wait for an acknowledgement before a retry ({@code timeout})
 */
public record ConnectionParameters(byte[] privateData, int retryCount, int rnrRetryCount, Duration minRnrTimer, Duration ackTimeout) {
    /** rdma_cm over InfiniBand: 56 bytes of private data with a connect request. */
    public static final int MAX_CONNECT_PRIVATE_DATA = 56;
    /** rdma_cm over InfiniBand: 196 bytes with an accept. */
    public static final int MAX_ACCEPT_PRIVATE_DATA = 196;
    /** rdma_cm over InfiniBand: 148 bytes with a reject. */
    public static final int MAX_REJECT_PRIVATE_DATA = 148;
    /** {@code rnr_retry_count} that retries forever. */
    public static final int RNR_RETRY_FOREVER = 7;

    public ConnectionParameters {
        privateData = privateData == null ? new byte[0] : privateData.clone();
        if (retryCount < 0 || retryCount > 7) {
            throw new IllegalArgumentException("retry count " + retryCount + " outside 0..7");
        }
        if (rnrRetryCount < 0 || rnrRetryCount > 7) {
            throw new IllegalArgumentException("RNR retry count " + rnrRetryCount + " outside 0..7 (7 retries forever)");
        }
        if (minRnrTimer.isNegative() || ackTimeout.isNegative() || ackTimeout.isZero()) {
            throw new IllegalArgumentException("RNR timer " + minRnrTimer + " and ack timeout " + ackTimeout + " must be positive");
        }
    }

    /** No private data, 7 transport retries, receiver-not-ready retried forever, 1 ms RNR timer, 1 s ack timeout. */
    public static ConnectionParameters defaults() {
        return new ConnectionParameters(new byte[0], 7, RNR_RETRY_FOREVER, Duration.ofMillis(1), Duration.ofSeconds(1));
    }

    public static ConnectionParameters withPrivateData(byte[] data) {
        return defaults().privateData(data);
    }

    public ConnectionParameters privateData(byte[] data) {
        return new ConnectionParameters(data, retryCount, rnrRetryCount, minRnrTimer, ackTimeout);
    }

    public ConnectionParameters rnrRetry(int count) {
        return new ConnectionParameters(privateData, retryCount, count, minRnrTimer, ackTimeout);
    }

    public ConnectionParameters retry(int count, Duration timeout) {
        return new ConnectionParameters(privateData, count, rnrRetryCount, minRnrTimer, timeout);
    }

    public ConnectionParameters minRnrTimer(Duration timer) {
        return new ConnectionParameters(privateData, retryCount, rnrRetryCount, timer, ackTimeout);
    }

    @Override
    public byte[] privateData() {
        return privateData.clone();
    }

    /** How long the peer keeps a message waiting for a receive before failing it, or null for forever. */
    Duration rnrBudget() {
        if (rnrRetryCount == RNR_RETRY_FOREVER) {
            return null;
        }
        return minRnrTimer.multipliedBy(rnrRetryCount);
    }

    /** How long an unacknowledged message may wait before it fails with RETRY_EXC_ERR. */
    Duration retryBudget() {
        return Duration.ofNanos(retryBudgetNanos());
    }

    /** {@link #retryBudget()} in nanoseconds, without Duration's BigDecimal arithmetic (it runs for every message). */
    long retryBudgetNanos() {
        return ackTimeout.toNanos() * (retryCount + 1L);
    }
}
