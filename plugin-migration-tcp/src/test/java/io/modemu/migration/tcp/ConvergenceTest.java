package io.modemu.migration.tcp;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.machine.RunState;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.MigrationCapability;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationParameters;
import io.modemu.migration.MigrationStatus;
import io.modemu.migration.tcp.testbed.BuiltIn;
import io.modemu.migration.tcp.testbed.TestVm;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A guest that dirties memory faster than the link carries it: the migration iterates without stopping it, and auto-converge slows it down until it fits. */
class ConvergenceTest {
    @TempDir
    Path dir;

    /**
     * disk-verify asked for more than it can dirty (it dirties at most 64 pages a step): it dirties as
     * fast as its vCPU steps, all of its 2 MiB area in every pass, so a throttled vCPU dirties less.
     */
    private TestVm.Spec busyGuest() throws IOException {
        TestVm.Spec spec = new TestVm.Spec();
        spec.name = "src";
        spec.ram = 8L << 20;
        spec.disk = TestVm.newDisk(dir, 1L << 20);
        spec.contributions = BuiltIn.contributions(new TcpTransport());
        spec.guestOptions.putAll(Map.of("blocks", "64", "queue-depth", "8", "dirty-rate", "4G", "dirty-size", "2M"));
        return spec;
    }

    @Test
    void aMigrationThatCannotConvergeIteratesWithoutStoppingTheGuestUntilItsTimeout() throws Exception {
        TestVm.Spec spec = busyGuest();
        try (TestVm src = TestVm.create(spec); TestVm dst = TestVm.create(spec.destination("dst"))) {
            src.start();
            src.awaitGuestProgress(100, Duration.ofSeconds(30));
            String uri = dst.migration.incoming("tcp:127.0.0.1:0", IncomingOptions.defaults());
            src.migration.setParameters(MigrationParameters.defaults().withMaxBandwidth(8L << 20).withDowntimeLimitMs(5).withTimeoutMs(2_500));
            src.migration.migrate(uri);
            MigrationInfo info = src.migration.completion().get(60, TimeUnit.SECONDS);
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).startsWith("the migration did not converge within x-timeout (2500 ms)");
            assertThat(src.events).as("the guest was never stopped").noneMatch(e -> e.name().equals("STOP"));
            assertThat(src.events.stream().filter(e -> e.name().equals("MIGRATION_PASS")).count()).as("passes").isGreaterThan(2);
            assertThat(src.machine.runState()).isEqualTo(RunState.RUNNING);
            assertThat(src.awaitGuestProgress(100, Duration.ofSeconds(30)).failed()).isZero();
        }
    }

    @Test
    void autoConvergeThrottlesTheVcpusUntilTheMigrationCompletes() throws Exception {
        TestVm.Spec spec = busyGuest();
        try (TestVm src = TestVm.create(spec); TestVm dst = TestVm.create(spec.destination("dst"))) {
            src.start();
            src.awaitGuestProgress(100, Duration.ofSeconds(30));
            String uri = dst.migration.incoming("tcp:127.0.0.1:0", IncomingOptions.defaults());
            // 5 ms at 16 MiB/s allow ~20 dirty pages at the switch-over: out of reach for the unthrottled guest
            // (hundreds per pass), within reach once it runs a few percent of the time
            src.migration.setParameters(MigrationParameters.defaults().withMaxBandwidth(16L << 20).withDowntimeLimitMs(5)
                    .withQmp(Map.of("cpu-throttle-initial", 40L, "cpu-throttle-increment", 20L)));
            src.migration.setCapability(MigrationCapability.AUTO_CONVERGE, true);
            AtomicInteger maxThrottle = new AtomicInteger();
            Thread watcher = Thread.ofPlatform().daemon(true).start(() -> {
                while (!Thread.currentThread().isInterrupted()) {
                    maxThrottle.accumulateAndGet(src.machine.vcpus().getFirst().throttlePercent(), Math::max);
                    Integer shown = src.migration.info().cpuThrottlePercentage();
                    if (shown != null) {
                        maxThrottle.accumulateAndGet(shown, Math::max);
                    }
                    try {
                        Thread.sleep(5);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
            src.migration.migrate(uri);
            MigrationInfo info = src.migration.completion().get(120, TimeUnit.SECONDS);
            watcher.interrupt();
            assertThat(info.status()).as("%s", info).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(maxThrottle.get()).as("the vCPU throttle during the migration").isGreaterThanOrEqualTo(40);
            assertThat(src.machine.vcpus().getFirst().throttlePercent()).as("throttle released at the end").isZero();
            assertThat(dst.machine.vcpus().getFirst().throttlePercent()).isZero();
            assertThat(dst.awaitGuestProgress(100, Duration.ofSeconds(30)).failed()).isZero();
        }
    }
}
