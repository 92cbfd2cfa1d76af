package io.modemu.migration.tcp;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.machine.RunState;
import io.modemu.machine.VmStateHandler;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationParameters;
import io.modemu.migration.MigrationStatus;
import io.modemu.migration.tcp.testbed.FaultyProxy;
import io.modemu.migration.tcp.testbed.TestVm;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every fault before the destination runs ends with the source running and intact: its guest carries
 * on without an error, its disk holds every acknowledged write, and a next migration carries all of
 * it over. The destination never starts with a partial state.
 */
class MigrationFaultTest {
    @TempDir
    Path dir;
    private TestVm src;
    private TestVm dst;

    @BeforeEach
    void source() throws IOException {
        TestVm.Spec spec = new TestVm.Spec();
        spec.name = "src";
        spec.ram = 16L << 20;
        spec.disk = TestVm.newDisk(dir, 8L << 20);
        src = TestVm.create(spec);
        src.fillRandom(7);
        src.start();
        src.awaitGuestProgress(200, Duration.ofSeconds(30));
    }

    @AfterEach
    void close() {
        if (dst != null) {
            dst.close();
        }
        src.close();
    }

    private String destination(IncomingOptions options) {
        dst = TestVm.create(src.spec().destination("dst"));
        return dst.migration.incoming("tcp:127.0.0.1:0", options);
    }

    private static String hostPort(String uri) {
        return uri.substring("tcp:".length());
    }

    private void parameters(long maxBandwidth) {
        src.migration.setParameters(MigrationParameters.defaults().withMaxBandwidth(maxBandwidth).withIoTimeoutMs(2_000));
    }

    private MigrationInfo finish() throws Exception {
        return src.migration.completion().get(60, TimeUnit.SECONDS);
    }

    /** The source runs, its guest makes progress without error, and a clean migration then carries RAM and disk over intact. */
    private void assertSourceIntact(MigrationInfo failed) throws Exception {
        assertThat(src.machine.runState()).as("source run state after %s", failed).isEqualTo(RunState.RUNNING);
        assertThat(src.awaitGuestProgress(200, Duration.ofSeconds(30)).failures()).isZero();
        if (dst != null) {
            MigrationInfo d = dst.migration.completion().get(30, TimeUnit.SECONDS);
            assertThat(d.status()).as("destination %s", d).isEqualTo(MigrationStatus.FAILED);
            assertThat(dst.machine.runState()).as("the destination never starts").isEqualTo(RunState.INMIGRATE);
            dst.close();
        }
        try (TestVm again = TestVm.create(src.spec().destination("dst2"))) {
            String uri = again.migration.incoming("tcp:127.0.0.1:0", new IncomingOptions(false, false));
            parameters(0);
            src.migration.migrate(uri);
            MigrationInfo ok = finish();
            assertThat(ok.status()).as("the next migration: %s", ok).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(TestVm.ramMismatch(src.machine, again.machine)).isEqualTo(-1);
            assertThat(again.checkDisk()).isNull();
            assertThat(again.guest().failures()).isZero();
        } finally {
            dst = null;
        }
    }

    @Test
    void connectionCutDuringSetup() throws Exception {
        try (FaultyProxy proxy = new FaultyProxy(hostPort(destination(IncomingOptions.defaults()))).cutAfter(40)) {
            parameters(0);
            src.migration.migrate(proxy.uri());
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).containsAnyOf("connection", "ended early");
            assertThat(src.migrationStatuses()).containsExactly("setup", "failed");
            assertSourceIntact(info);
        }
    }

    @Test
    void connectionCutDuringIteration() throws Exception {
        try (FaultyProxy proxy = new FaultyProxy(hostPort(destination(IncomingOptions.defaults()))).cutAfter(4L << 20)) {
            parameters(32L << 20);
            src.migration.migrate(proxy.uri());
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(src.migrationStatuses()).containsExactly("setup", "active", "failed");
            assertSourceIntact(info);
        }
    }

    @Test
    void connectionCutDuringCompletion() throws Exception {
        try (FaultyProxy proxy = new FaultyProxy(hostPort(destination(IncomingOptions.defaults())))) {
            AtomicBoolean cut = new AtomicBoolean();
            src.device.onStop(d -> {
                if (cut.compareAndSet(false, true)) {
                    proxy.cutNow();
                }
            });
            parameters(0);
            src.migration.migrate(proxy.uri());
            MigrationInfo info = finish();
            src.device.onStop(null);
            assertThat(cut).isTrue();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(src.migrationStatuses()).contains("active").last().isEqualTo("failed");
            assertSourceIntact(info);
        }
    }

    @Test
    void destinationThatDiesMidStreamFailsTheMigration() throws Exception {
        try (FaultyProxy proxy = new FaultyProxy(hostPort(destination(IncomingOptions.defaults())))) {
            parameters(16L << 20);
            src.migration.migrate(proxy.uri());
            TestVm.await(() -> proxy.forwarded() > (2L << 20), Duration.ofSeconds(30), () -> "no data reached the destination");
            dst.close();
            dst = null;
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertSourceIntact(info);
        }
    }

    @Test
    void cancelDuringSetup() throws Exception {
        try (ServerSocket silent = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            CompletableFuture<Socket> accepted = CompletableFuture.supplyAsync(() -> {
                try {
                    return silent.accept();
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            parameters(0);
            src.migration.migrate("tcp:127.0.0.1:" + silent.getLocalPort());
            try (Socket s = accepted.get(10, TimeUnit.SECONDS)) {
                assertThat(s.isConnected()).as("a destination that accepts and never answers").isTrue();
                assertThat(src.migration.info().status()).isEqualTo(MigrationStatus.SETUP);
                src.migration.cancel();
                MigrationInfo info = finish();
                assertThat(info.status()).isEqualTo(MigrationStatus.CANCELLED);
                assertThat(src.migrationStatuses()).containsExactly("setup", "cancelling", "cancelled");
                assertSourceIntact(info);
            }
        }
    }

    @Test
    void cancelWhileIterating() throws Exception {
        String uri = destination(IncomingOptions.defaults());
        parameters(8L << 20);
        src.migration.migrate(uri);
        TestVm.await(() -> src.migration.info().status() == MigrationStatus.ACTIVE && src.migration.info().ram().transferred() > (1L << 20),
                Duration.ofSeconds(30), () -> "not active: " + src.migration.info());
        src.migration.cancel();
        MigrationInfo info = finish();
        assertThat(info.status()).isEqualTo(MigrationStatus.CANCELLED);
        assertThat(src.migrationStatuses()).containsExactly("setup", "active", "cancelling", "cancelled");
        assertSourceIntact(info);
    }

    @Test
    void cancelDuringCompletion() throws Exception {
        String uri = destination(IncomingOptions.defaults());
        src.device.onStop(d -> src.migration.cancel());
        parameters(0);
        src.migration.migrate(uri);
        MigrationInfo info = finish();
        src.device.onStop(null);
        assertThat(info.status()).isEqualTo(MigrationStatus.CANCELLED);
        assertSourceIntact(info);
    }

    @Test
    void stopHandlerThatFailsFailsTheMigrationNamingIt() throws Exception {
        AtomicBoolean failed = new AtomicBoolean();
        src.machine.addVmStateHandler("flaky-handler", -10, new VmStateHandler() {
            @Override
            public CompletionStage<Void> stop(RunState newState) {
                return failed.compareAndSet(false, true) ? CompletableFuture.failedFuture(new IllegalStateException("refuses to stop"))
                        : CompletableFuture.completedFuture(null);
            }

            @Override
            public CompletionStage<Void> start() {
                return CompletableFuture.completedFuture(null);
            }
        });
        String uri = destination(IncomingOptions.defaults());
        parameters(0);
        src.migration.migrate(uri);
        MigrationInfo info = finish();
        assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
        assertThat(info.errorDesc()).contains("flaky-handler").contains("refuses to stop");
        assertSourceIntact(info);
    }

    @Test
    void corruptConfigurationIsRejectedByItsChecksum() throws Exception {
        try (FaultyProxy proxy = new FaultyProxy(hostPort(destination(IncomingOptions.defaults())))) {
            proxy.tamper((pos, buf, off, len) -> flip(pos, buf, off, len, 32 + 16 + 3));
            parameters(0);
            src.migration.migrate(proxy.uri());
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).isEqualTo("destination failed: section 'configuration': checksum mismatch (the stream is corrupt)");
            assertSourceIntact(info);
        }
    }

    @Test
    void pageRecordOutsideGuestRamIsRejectedNamingTheSection() throws Exception {
        try (FaultyProxy proxy = new FaultyProxy(hostPort(destination(IncomingOptions.defaults())))) {
            // the first RAM record follows the configuration; make its offset field 512 GiB
            long[] firstRecord = {-1};
            proxy.tamper((pos, buf, off, len) -> {
                if (firstRecord[0] < 0 && pos <= 39 && pos + len > 39) {
                    long cfgLen = 0;
                    for (int i = 36; i < 40; i++) {
                        cfgLen = cfgLen << 8 | (buf[off + (int) (i - pos)] & 0xff);
                    }
                    firstRecord[0] = 32 + 16 + cfgLen;
                }
                if (firstRecord[0] >= 0) {
                    flip(pos, buf, off, len, firstRecord[0] + 8 + 3);
                }
            });
            parameters(0);
            src.migration.migrate(proxy.uri());
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).startsWith("destination failed: section 'ram': ").contains("outside RAM block 'ram'");
            assertSourceIntact(info);
        }
    }

    private static void flip(long pos, byte[] buf, int off, int len, long at) {
        if (at >= pos && at < pos + len) {
            buf[off + (int) (at - pos)] ^= (byte) 0x80;
        }
    }

    @Test
    void truncatedStreamFailsTheDestinationNamingTheSection() throws Exception {
        try (FaultyProxy proxy = new FaultyProxy(hostPort(destination(IncomingOptions.defaults()))).truncateAfter(3L << 20)) {
            parameters(0);
            src.migration.migrate(proxy.uri());
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).isEqualTo("destination failed: section 'ram': the stream ended early (truncated, or the source went away)");
            assertSourceIntact(info);
        }
    }

    @Test
    void destinationWithDifferentRamSizeRefusesBeforeAnyPage() throws Exception {
        TestVm.Spec d = src.spec().destination("dst");
        d.ram = 32L << 20;
        dst = TestVm.create(d);
        String uri = dst.migration.incoming("tcp:127.0.0.1:0", IncomingOptions.defaults());
        parameters(0);
        src.migration.migrate(uri);
        MigrationInfo info = finish();
        assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
        assertThat(info.errorDesc()).isEqualTo("destination failed: configuration mismatch: RAM block 'ram' is 16777216 bytes on the source and 33554432 bytes"
                + " here (-m must match)");
        assertThat(info.ram()).isNull();
        assertThat(dst.machine.memory().blocks().getFirst().segment().asSlice(DiskWriterLayout.DIRTY_AREA, 1 << 20).mismatch(
                java.lang.foreign.MemorySegment.ofArray(new byte[1 << 20]))).as("no page was written").isEqualTo(-1);
        assertSourceIntact(info);
    }

    @Test
    void destinationWithoutTheDeviceRefuses() throws Exception {
        TestVm.Spec d = src.spec().destination("dst");
        d.device = false;
        d.guest = false;
        dst = TestVm.create(d);
        String uri = dst.migration.incoming("tcp:127.0.0.1:0", IncomingOptions.defaults());
        parameters(0);
        src.migration.migrate(uri);
        MigrationInfo info = finish();
        assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
        assertThat(info.errorDesc()).startsWith("destination failed: configuration mismatch: ").contains("device 'disk0' (test-blk) of the source is missing here")
                .contains("section 'test-blk:disk0' of the source has no device here");
        assertSourceIntact(info);
    }

    @Test
    void peerThatStopsReadingTimesOut() throws Exception {
        try (FaultyProxy proxy = new FaultyProxy(hostPort(destination(IncomingOptions.defaults()))).stallAfter(1L << 20)) {
            src.migration.setParameters(MigrationParameters.defaults().withMaxBandwidth(0).withIoTimeoutMs(500));
            src.migration.migrate(proxy.uri());
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).contains("took no data for 500 ms");
            proxy.cutNow();
            assertSourceIntact(info);
        }
    }

    @Test
    void destinationKeepsWaitingAfterAFailedAttemptAndTakesTheNextOne() throws Exception {
        String uri = destination(new IncomingOptions(false, true));
        try (FaultyProxy proxy = new FaultyProxy(hostPort(uri)).truncateAfter(1L << 20)) {
            parameters(0);
            src.migration.migrate(proxy.uri());
            assertThat(finish().status()).isEqualTo(MigrationStatus.FAILED);
        }
        assertThat(dst.migration.completion().isDone()).as("the destination still waits").isFalse();
        assertThat(src.machine.runState()).isEqualTo(RunState.RUNNING);
        src.migration.migrate(uri);
        MigrationInfo info = finish();
        assertThat(info.status()).isEqualTo(MigrationStatus.COMPLETED);
        assertThat(dst.migration.completion().get(10, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.COMPLETED);
        assertThat(TestVm.ramMismatch(src.machine, dst.machine)).isEqualTo(-1);
        assertThat(dst.checkDisk()).isNull();
    }

    /** Where the disk-writer's free area starts. */
    private static final class DiskWriterLayout {
        static final long DIRTY_AREA = io.modemu.migration.tcp.testbed.DiskWriter.DIRTY_AREA;
    }
}
