package io.modemu.bench;

import io.modemu.block.BlockBackend;
import io.modemu.machine.Machine;
import io.modemu.machine.RunState;
import io.modemu.options.Options;
import io.modemu.plugin.Contributions;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * Benchmark {@code stop-latency}: how long {@code machine.vmStop(PAUSED)} takes with exactly {@code qd}
 * (default 64) guest requests in flight on a virtio-blk dataplane (an IOThread), from the call (on a
 * thread that is not the machine's main loop) until its future completes: vCPU paused, dataplane
 * stopped, every request completed into the used ring, backend moved home to the main loop.
 *
 * <p>The drive is the null driver with a latency ({@code latency-ns}, default 1 ms): each request
 * stays in flight that long, so the {@code qd} requests a batch submits are all on the backend when the
 * stop is asked. The drive is read-only (the guest only reads), so that the stop does no flush and what
 * is measured is the drain. Each iteration measures, alternately, the same machine's stop with nothing
 * in flight (the reference) and the stop with a full batch in flight, then starts the VM again; the
 * second is asked only while the batch certainly is in flight (before its kick plus the latency), and
 * that remaining time is a floor that no drain can beat ({@code floor}). Invariants checked every time:
 * nothing in flight after the stop, the backend on the main loop, no request parked, the backend
 * completed every request the guest submitted, and after the start the guest got every completion.
 *
 * <p>Options: {@code --iterations=N} (200), {@code --warmup=N} (20 iterations not counted), {@code --qd=N}
 * (64), {@code --latency=DURATION} (1ms). Prints {@code key=value} lines.
 */
public final class StopLatencyBench {
    private static final long RAM = 64L << 20;
    private static final long TIMEOUT_S = 30;

    private final PrintStream out = System.out;
    private final int qd;
    private final long latencyNanos;
    private long retries;

    private StopLatencyBench(int qd, long latencyNanos) {
        this.qd = qd;
        this.latencyNanos = latencyNanos;
    }

    public static void main(String[] args) throws Exception {
        int iterations = 200;
        int warmup = 20;
        int qd = 64;
        String latency = "1ms";
        for (String a : args) {
            String[] kv = a.replaceFirst("^--", "").split("=", 2);
            String v = kv.length > 1 ? kv[1] : "";
            switch (kv[0]) {
                case "iterations" -> iterations = Integer.parseInt(v);
                case "warmup" -> warmup = Integer.parseInt(v);
                case "qd" -> qd = Integer.parseInt(v);
                case "latency" -> latency = v;
                default -> throw new IllegalArgumentException("unknown option '" + a + "' (see the class comment of " + StopLatencyBench.class.getName() + ")");
            }
        }
        long latencyNanos = Options.parse("-drive", "latency-ns=" + latency, null).durationNanos("latency-ns", 0, 1);
        if (latencyNanos < 50_000) {
            throw new IllegalArgumentException("--latency=" + latency + ": needs at least 50us, so that the requests are still in flight when the stop is asked");
        }
        StopLatencyBench b = new StopLatencyBench(qd, latencyNanos);
        b.line("bench", "stop-latency");
        b.line("qd", qd);
        b.line("iterations", iterations);
        b.line("cpus", Runtime.getRuntime().availableProcessors());
        b.line("java", System.getProperty("java.version"));
        b.run(iterations, warmup);
    }

    private void line(String key, Object value) {
        out.println(key + "=" + value);
        out.flush();
    }

    private void run(int iterations, int warmup) throws Exception {
        String drive = "driver=null-co,size=1G,read-only=on,latency-ns=" + latencyNanos;
        line("drive", drive);
        line("null_latency_us", us(latencyNanos));
        try (Machine m = Machine.builder().ram(RAM).iothread("io0").vcpus(1).contributions(Contributions.builder()
                .add(provider(io.modemu.block.BlockDriver.class, "null-co"))
                .add(provider(io.modemu.device.DeviceType.class, "virtio-blk-device"))
                .add(new BatchReadProgram()).build()).build()) {
            BlockBackend be = m.addDrive("d0", Options.parse("-drive", drive, null));
            m.addDevice(Options.parse("-device", "virtio-blk-device,drive=d0,iothread=io0,queue-size=256", "driver"));
            BatchReadProgram.Task task = (BatchReadProgram.Task) m.loadGuest(BatchReadProgram.NAME, Options.parse("-guest", "qd=" + qd, null));
            m.vmStart().get(TIMEOUT_S, TimeUnit.SECONDS);
            await("the guest to set up its driver", task::ready);
            if (be.context() != m.iothread("io0")) {
                throw new IllegalStateException("the drive is not on its IOThread while the VM runs: " + be.context());
            }
            long[] idle = new long[iterations];
            long[] busy = new long[iterations];
            long[] floor = new long[iterations];
            long parked0 = be.parkedTotal();
            for (int i = -warmup; i < iterations; i++) {
                long idleNanos = stopIdle(m, be, task);
                long[] r = stopBusy(m, be, task);
                if (i >= 0) {
                    idle[i] = idleNanos;
                    busy[i] = r[0];
                    floor[i] = r[1];
                }
            }
            if (be.parkedTotal() != parked0) {
                throw new IllegalStateException((be.parkedTotal() - parked0) + " requests were parked in a drained section: the device took requests while it stopped");
            }
            if (task.errors() > 0) {
                throw new IllegalStateException(task.errors() + " guest reads failed");
            }
            long[] over = new long[iterations];
            for (int i = 0; i < iterations; i++) {
                over[i] = busy[i] - floor[i];
            }
            Arrays.sort(idle);
            Arrays.sort(busy);
            Arrays.sort(floor);
            Arrays.sort(over);
            line("stop0_p50_us", us(pct(idle, 50)));
            line("stop0_p99_us", us(pct(idle, 99)));
            line("stop0_max_us", us(idle[iterations - 1]));
            line("stop" + qd + "_p50_us", us(pct(busy, 50)));
            line("stop" + qd + "_p99_us", us(pct(busy, 99)));
            line("stop" + qd + "_max_us", us(busy[iterations - 1]));
            // the part of each stop that the requests' remaining latency does not explain
            line("stop" + qd + "_floor_p50_us", us(pct(floor, 50)));
            line("stop" + qd + "_over_floor_p50_us", us(pct(over, 50)));
            line("stop" + qd + "_over_floor_p99_us", us(pct(over, 99)));
            line("requests_in_flight_at_each_stop", qd);
            line("stops_checked", 2L * (iterations + warmup));
            line("retries", retries);
            line("guest_reads", task.completed());
            line("invariants", "ok (in flight 0 after every stop, backend home, none parked, none lost, none failed)");
            line("note", "wall clock from vmStop on a non-main-loop thread to its future completing; p50/p99/max of " + iterations
                    + "; floor = the batch's kick + latency - the stop's call, which no drain can beat");
            m.vmStop(RunState.PAUSED).get(TIMEOUT_S, TimeUnit.SECONDS);
        }
    }

    /** The reference: the same stop with nothing in flight. Returns its latency in nanoseconds. */
    private long stopIdle(Machine m, BlockBackend be, BatchReadProgram.Task task) throws Exception {
        task.fill = false;
        await("the guest to complete its batch", () -> task.completed() == task.submitted() && be.inFlight() == 0);
        long t0 = System.nanoTime();
        long t1 = timedStop(m);
        checkStopped(m, be, task, 0);
        m.vmStart().get(TIMEOUT_S, TimeUnit.SECONDS);
        return t1 - t0;
    }

    /**
     * The stop with a batch of {@code qd} requests in flight on the backend. Returns its latency and
     * the floor (the batch's remaining latency when the stop was asked) in nanoseconds.
     */
    private long[] stopBusy(Machine m, BlockBackend be, BatchReadProgram.Task task) throws Exception {
        while (true) {
            long submitted = task.submitted();
            task.fill = true;
            await("the guest's batch of " + qd + " to reach the backend",
                    () -> task.submitted() > submitted && be.inFlight() == qd || task.submitted() > submitted + qd);
            task.fill = false;
            long t0 = System.nanoTime();
            // the guest clock is System.nanoTime under ThreadLoopDriver; no request of the batch completes before kick + latency
            long floor = task.kickNanos() + latencyNanos - t0;
            if (task.submitted() == submitted + qd && be.inFlight() == qd && floor > latencyNanos / 10) {
                long t1 = timedStop(m);
                long took = t1 - t0;
                if (took < floor) {
                    throw new IllegalStateException("the stop completed after " + took + " ns, before its " + qd
                            + " requests could have completed (" + floor + " ns): it did not drain them");
                }
                checkStopped(m, be, task, qd);
                m.vmStart().get(TIMEOUT_S, TimeUnit.SECONDS);
                long expected = task.submitted();
                await("the guest to receive all " + expected + " completions after the start (a request lost?)",
                        () -> task.completed() == expected);
                return new long[] {took, floor};
            }
            // this thread was descheduled past the batch's window (a busy machine): let it complete, try again
            retries++;
            await("the guest to complete its batch", () -> task.completed() == task.submitted());
        }
    }

    /** Asks for the stop and returns when its future completed (nanoTime, taken on the completing thread). */
    private static long timedStop(Machine m) throws Exception {
        long[] done = new long[1];
        CompletableFuture<Void> f = m.vmStop(RunState.PAUSED).whenComplete((v, t) -> done[0] = System.nanoTime());
        f.get(TIMEOUT_S, TimeUnit.SECONDS);
        return done[0];
    }

    private static void checkStopped(Machine m, BlockBackend be, BatchReadProgram.Task task, int inFlightAtStop) {
        if (m.runState() != RunState.PAUSED) {
            throw new IllegalStateException("run state " + m.runState() + " after the stop");
        }
        if (be.inFlight() != 0) {
            throw new IllegalStateException(be.inFlight() + " requests in flight after a stop with " + inFlightAtStop);
        }
        if (be.context() != m.mainLoop()) {
            throw new IllegalStateException("the drive is not home on the main loop after the stop: " + be.context());
        }
        // the vCPU is paused: the guest's counter is stable; every request it submitted completed on the backend
        if (be.stats().readOps() != task.submitted()) {
            throw new IllegalStateException("the guest submitted " + task.submitted() + " reads, the backend completed "
                    + be.stats().readOps() + " (stop with " + inFlightAtStop + " in flight)");
        }
    }

    /** Polls: spins a little, then parks briefly, leaving the cores to the vCPU and the IOThread. */
    private static void await(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
        for (int spins = 0; !condition.getAsBoolean(); spins++) {
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException("timed out waiting for " + what);
            }
            if (spins < 200) {
                Thread.onSpinWait();
            } else {
                LockSupport.parkNanos(10_000);
            }
        }
    }

    /** The stock plugin's contribution, found like the plugin host finds it: through ServiceLoader. */
    private static <S> S provider(Class<S> spi, String name) {
        for (S s : java.util.ServiceLoader.load(spi)) {
            String n = s instanceof io.modemu.block.BlockDriver d ? d.name() : ((io.modemu.device.DeviceType) s).name();
            if (n.equals(name)) {
                return s;
            }
        }
        throw new IllegalStateException("no " + spi.getSimpleName() + " '" + name + "' on the module path");
    }

    private static long pct(long[] sorted, int p) {
        int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    private static String us(long nanos) {
        return String.format(Locale.ROOT, "%.1f", nanos / 1e3);
    }
}
