package io.modemu.bench;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * How long a cache line takes to go from one processor to the other and back, measured by two threads
 * that hand a counter to each other. A device path whose guest driver and IOThread run on different
 * processors pays such transfers on every request (the driver writes descriptors and headers, the
 * device reads them and writes the status byte and used element back), so this latency sets much of
 * its cost.
 *
 * <p>On a VM it is the host's doing: the hypervisor places the VM's processors on host cores that
 * share a cache, or not, and may move them every few seconds. On the 2-core development VM the round
 * trip measured ~100-120 ns in some seconds and ~430-530 ns in others.
 *
 * <p>The two threads must find a processor each: on a busy host a probe may find none free and
 * reports {@link Double#NaN} rather than a scheduling delay.
 */
final class CrossCpuProbe {
    private static final VarHandle TURN;

    static {
        try {
            TURN = MethodHandles.lookup().findVarHandle(CrossCpuProbe.class, "turn", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** A round trip above this many nanoseconds counts as far (the processors share no cache). */
    static final double FAR_NANOS = 250;

    // padding keeps the counter alone on its cache line
    @SuppressWarnings("unused")
    private long p1, p2, p3, p4, p5, p6, p7;
    @SuppressWarnings("unused")
    private volatile long turn;
    @SuppressWarnings("unused")
    private long q1, q2, q3, q4, q5, q6, q7;

    private CrossCpuProbe() {
    }

    /**
     * The median over {@code rounds} rounds of the mean round trip of {@code trips} hand-overs, in
     * nanoseconds; NaN when the partner thread did not answer within 20 ms (no processor for it).
     */
    static double roundTripNanos(int rounds, int trips) throws InterruptedException {
        CrossCpuProbe p = new CrossCpuProbe();
        long total = (long) rounds * trips;
        Thread partner = Thread.ofPlatform().name("cross-cpu-probe").daemon().start(() -> {
            long deadline = System.nanoTime() + 1_000_000_000L;
            for (long i = 0; i < total; i++) {
                long want = 2 * i + 1;
                int spins = 0;
                while ((long) TURN.getAcquire(p) != want) {
                    if (++spins == 4096) {
                        spins = 0;
                        if ((long) TURN.getAcquire(p) < 0 || System.nanoTime() > deadline) {
                            return;
                        }
                    }
                }
                TURN.setRelease(p, want + 1);
            }
        });
        double[] means = new double[rounds];
        boolean answered = true;
        long i = 0;
        outer:
        for (int r = 0; r < rounds; r++) {
            long t0 = System.nanoTime();
            for (int k = 0; k < trips; k++, i++) {
                TURN.setRelease(p, 2 * i + 1);
                int spins = 0;
                while ((long) TURN.getAcquire(p) != 2 * i + 2) {
                    if (++spins == 4096) {
                        spins = 0;
                        if (System.nanoTime() - t0 > 20_000_000L) {
                            answered = false;
                            break outer;
                        }
                    }
                }
            }
            means[r] = (double) (System.nanoTime() - t0) / trips;
        }
        TURN.setRelease(p, -1L);
        partner.join();
        if (!answered) {
            return Double.NaN;
        }
        Arrays.sort(means);
        return means[rounds / 2];
    }

    /** A probe of a few milliseconds between two measured windows. */
    static double sample() throws InterruptedException {
        return roundTripNanos(9, 500);
    }
}
