package io.modemu.migration.tcp.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.machine.RunState;
import io.modemu.machine.VmStateHandler;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationParameters;
import io.modemu.migration.MigrationStatus;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Live migration between two machines in one JVM, the same scenarios for every transport (a subclass
 * per transport gives its {@link TransportFixture}). The source: random RAM, a virtio-blk disk on an
 * IOThread over a slow raw image with requests in flight, and the disk-verify guest dirtying RAM and
 * verifying what it reads back.
 *
 * <ul>
 *   <li>A migration in each of the transport's modes: the destination holds the source's RAM at the
 *       stop, its disk every acknowledged write, and the guest carries on verifying there.</li>
 *   <li>Every fault before the destination runs — the link cut during setup, iteration or completion,
 *       the destination gone or cancelled, a cancel in each phase, a stop handler that fails, a
 *       corrupted or truncated stream, a configuration mismatch — ends with the source running and
 *       intact: its guest carries on without an error, and a next migration carries RAM and disk over
 *       intact. The destination never starts with a partial state.</li>
 * </ul>
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class MigrationScenarios {
    protected TransportFixture fixture;
    protected TestVm src;
    protected TestVm dst;

    /** The transport under test; called once per test class. */
    protected abstract TransportFixture newFixture() throws IOException;

    @BeforeAll
    void fixture() throws IOException {
        fixture = newFixture();
    }

    @AfterAll
    void closeFixture() {
        fixture.close();
    }

    @BeforeEach
    void source(@TempDir Path dir) throws IOException {
        TestVm.Spec spec = new TestVm.Spec();
        spec.name = "src";
        spec.ram = 16L << 20;
        spec.disk = TestVm.newDisk(dir, 4L << 20);
        spec.diskLatencyNs = 500_000;
        spec.contributions = fixture.contributions();
        src = TestVm.create(spec);
        src.fillRandom(7);
        src.start();
        src.awaitGuestProgress(200, Duration.ofSeconds(30));
    }

    @AfterEach
    void close() {
        if (dst != null) {
            dst.close();
            dst = null;
        }
        src.close();
    }

    /** A destination for the source, listening; returns the URI it listens at. */
    protected String destination(IncomingOptions options) {
        dst = TestVm.create(fixture.destination(src.spec(), "dst"));
        return dst.migration.incoming(fixture.listenUri(), options);
    }

    protected void parameters(long maxBandwidth) {
        src.migration.setParameters(MigrationParameters.defaults().withMaxBandwidth(maxBandwidth).withIoTimeoutMs(2_000));
    }

    protected MigrationInfo finish() throws Exception {
        return src.migration.completion().get(60, TimeUnit.SECONDS);
    }

    /** Waits until the source's migration is active and has sent {@code bytes} of RAM. */
    protected void awaitTransferred(long bytes) {
        TestVm.await(() -> {
            MigrationInfo i = src.migration.info();
            assertThat(src.migration.completion()).as("still migrating: %s", i).isNotDone();
            return i.status() == MigrationStatus.ACTIVE && i.ram() != null && i.ram().transferred() > bytes;
        }, Duration.ofSeconds(30), () -> "not active with " + bytes + " bytes sent: " + src.migration.info());
    }

    /**
     * The source runs, its guest makes progress without an error, and a clean migration then carries
     * RAM and disk over intact; a destination of the failed migration failed too and never started.
     */
    protected void assertSourceIntact(MigrationInfo failed) throws Exception {
        assertThat(src.machine.runState()).as("source run state after %s", failed).isEqualTo(RunState.RUNNING);
        TestVm.GuestStatus guest = src.awaitGuestProgress(200, Duration.ofSeconds(30));
        assertThat(guest.failed()).as("the source's guest: %s", guest).isZero();
        assertThat(guest.ioErrors()).as("the source's guest: %s", guest).isZero();
        if (dst != null) {
            MigrationInfo d = dst.migration.completion().get(30, TimeUnit.SECONDS);
            assertThat(d.status()).as("destination %s", d).isEqualTo(MigrationStatus.FAILED);
            assertThat(dst.machine.runState()).as("the destination never starts").isEqualTo(RunState.INMIGRATE);
            dst.close();
            dst = null;
        }
        try (TestVm again = TestVm.create(fixture.destination(src.spec(), "dst2"))) {
            String uri = again.migration.incoming(fixture.listenUri(), new IncomingOptions(false, false));
            parameters(0);
            src.migration.migrate(fixture.sourceUri(uri));
            MigrationInfo ok = finish();
            assertThat(ok.status()).as("the next migration: %s", ok).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(again.migration.completion().get(30, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.COMPLETED);
            assertThat(TestVm.ramMismatch(src.machine, again.machine)).as("first differing RAM offset").isEqualTo(-1);
            assertThat(again.checkDisk()).isNull();
            assertThat(again.guest().failed()).isZero();
        }
    }

    protected Stream<String> modes() {
        return fixture.modes().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("modes")
    void destinationHoldsTheSourceRamAtTheStopEveryAcknowledgedWriteAndTheGuestCarriesOn(String mode) throws Exception {
        // the guest writes a whole generation before it reads any of it back; a migration as fast as this
        // one can otherwise stop it before its first verified block, and the check below would mean nothing
        src.awaitGuestVerified(1, Duration.ofSeconds(30));
        String uri = destination(new IncomingOptions(false, false));
        src.migration.setParameters(src.migration.parameters().withMaxBandwidth(0));
        src.migration.migrate(fixture.prepareSource(mode, uri, src.migration));
        MigrationInfo info = finish();
        MigrationInfo dstInfo = dst.migration.completion().get(10, TimeUnit.SECONDS);

        assertThat(info.status()).as("source: %s", info).isEqualTo(MigrationStatus.COMPLETED);
        assertThat(dstInfo.status()).as("destination: %s", dstInfo).isEqualTo(MigrationStatus.COMPLETED);
        assertThat(src.machine.runState()).isEqualTo(RunState.POSTMIGRATE);
        assertThat(dst.machine.runState()).as("no autostart: the destination stays paused").isEqualTo(RunState.PAUSED);
        assertThat(TestVm.ramMismatch(src.machine, dst.machine)).as("first differing RAM offset").isEqualTo(-1);
        assertThat(dst.checkDisk()).isNull();
        TestVm.GuestStatus atStop = dst.guest();
        assertThat(atStop).as("the guest's record travels in RAM").isEqualTo(src.guest());
        assertThat(atStop.failed()).isZero();
        assertThat(atStop.verified()).isPositive();

        long ram = src.spec().ram;
        assertThat(info.downtimeMs()).isNotNull().isGreaterThanOrEqualTo(0);
        assertThat(info.totalTimeMs()).isGreaterThanOrEqualTo(info.downtimeMs());
        assertThat(info.ram().transferred()).isGreaterThan(ram / 2);
        assertThat(info.ram().normal()).isPositive();
        assertThat(info.ram().duplicate()).isPositive();
        assertThat(info.ram().dirtySyncCount()).isGreaterThanOrEqualTo(2);
        assertThat(info.ram().remaining()).isZero();
        fixture.checkCompleted(mode, info, ram);
        assertThat(src.migrationStatuses()).containsExactly("setup", "active", "device", "completed");
        assertThat(src.events).anyMatch(e -> e.name().equals("MIGRATION_PASS"));
        Map<String, Object> qmp = info.toQmp();
        assertThat(qmp).containsKeys("status", "total-time", "downtime", "setup-time", "ram").doesNotContainKey("error-desc");

        dst.start();
        TestVm.GuestStatus later = dst.awaitGuestProgress(1_000, Duration.ofSeconds(30));
        assertThat(later.verified()).as("blocks verified at the destination").isGreaterThan(atStop.verified());
        assertThat(later.failed()).isZero();
        dst.pause();
        assertThat(dst.checkDisk()).isNull();
        assertThat(dst.guest().failed()).isZero();
        assertThat(dst.guest().ioErrors()).isZero();
    }

    @Test
    void connectionCutDuringSetup() throws Exception {
        try (FaultyLink link = fixture.faultyLink(destination(IncomingOptions.defaults())).cutAfter(40)) {
            parameters(0);
            src.migration.migrate(link.uri());
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).isNotBlank();
            assertThat(src.migrationStatuses()).containsExactly("setup", "failed");
            assertSourceIntact(info);
        }
    }

    @Test
    void connectionCutDuringIteration() throws Exception {
        try (FaultyLink link = fixture.faultyLink(destination(IncomingOptions.defaults()))) {
            parameters(8L << 20);
            src.migration.migrate(link.uri());
            awaitTransferred(2L << 20);
            link.cutNow();
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(src.migrationStatuses()).containsExactly("setup", "active", "failed");
            assertSourceIntact(info);
        }
    }

    @Test
    void connectionCutDuringCompletion() throws Exception {
        try (FaultyLink link = fixture.faultyLink(destination(IncomingOptions.defaults()))) {
            AtomicBoolean cut = new AtomicBoolean();
            src.onStop(vm -> {
                if (cut.compareAndSet(false, true)) {
                    link.cutNow();
                }
            });
            parameters(0);
            src.migration.migrate(link.uri());
            MigrationInfo info = finish();
            src.onStop(null);
            assertThat(cut).isTrue();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(src.migrationStatuses()).contains("active").last().isEqualTo("failed");
            assertSourceIntact(info);
        }
    }

    @Test
    void destinationThatDiesMidStreamFailsTheMigration() throws Exception {
        String uri = destination(IncomingOptions.defaults());
        parameters(8L << 20);
        src.migration.migrate(fixture.sourceUri(uri));
        awaitTransferred(2L << 20);
        dst.close();
        dst = null;
        MigrationInfo info = finish();
        assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
        assertSourceIntact(info);
    }

    @Test
    void destinationCancelledMidStreamFailsTheMigration() throws Exception {
        String uri = destination(IncomingOptions.defaults());
        parameters(8L << 20);
        src.migration.migrate(fixture.sourceUri(uri));
        awaitTransferred(2L << 20);
        dst.migration.cancel();
        MigrationInfo info = finish();
        assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
        assertSourceIntact(info);
    }

    @Test
    void cancelDuringSetup() throws Exception {
        try (TransportFixture.SilentPeer peer = fixture.silentPeer()) {
            parameters(0);
            src.migration.migrate(peer.uri());
            peer.awaitContact(Duration.ofSeconds(10));
            assertThat(src.migration.info().status()).isEqualTo(MigrationStatus.SETUP);
            src.migration.cancel();
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.CANCELLED);
            assertThat(src.migrationStatuses()).containsExactly("setup", "cancelling", "cancelled");
            assertSourceIntact(info);
        }
    }

    @Test
    void cancelWhileIterating() throws Exception {
        String uri = destination(IncomingOptions.defaults());
        parameters(8L << 20);
        src.migration.migrate(fixture.sourceUri(uri));
        awaitTransferred(1L << 20);
        src.migration.cancel();
        MigrationInfo info = finish();
        assertThat(info.status()).isEqualTo(MigrationStatus.CANCELLED);
        assertThat(src.migrationStatuses()).containsExactly("setup", "active", "cancelling", "cancelled");
        assertSourceIntact(info);
    }

    @Test
    void cancelDuringCompletion() throws Exception {
        String uri = destination(IncomingOptions.defaults());
        src.onStop(vm -> vm.migration.cancel());
        parameters(0);
        src.migration.migrate(fixture.sourceUri(uri));
        MigrationInfo info = finish();
        src.onStop(null);
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
        src.migration.migrate(fixture.sourceUri(uri));
        MigrationInfo info = finish();
        assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
        assertThat(info.errorDesc()).contains("flaky-handler").contains("refuses to stop");
        assertSourceIntact(info);
    }

    @Test
    void corruptConfigurationIsRejectedByItsChecksum() throws Exception {
        try (FaultyLink link = fixture.faultyLink(destination(IncomingOptions.defaults()))) {
            link.tamper((pos, buf, off, len) -> flip(pos, buf, off, len, StreamHead.CONFIGURATION_PAYLOAD + 3));
            parameters(0);
            src.migration.migrate(link.uri());
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).isEqualTo("destination failed: section 'configuration': checksum mismatch (the stream is corrupt)");
            assertSourceIntact(info);
        }
    }

    @Test
    void ramRecordOutsideGuestRamIsRejectedNamingTheSection() throws Exception {
        try (FaultyLink link = fixture.faultyLink(destination(IncomingOptions.defaults()))) {
            // the first RAM record follows the configuration; make its offset field (bytes 8..15 of its header) 512 GiB more
            StreamHead head = new StreamHead();
            link.tamper((pos, buf, off, len) -> {
                head.feed(pos, buf, off, len);
                if (head.configurationEnd() >= 0) {
                    flip(pos, buf, off, len, head.configurationEnd() + 8 + 3);
                }
            });
            parameters(0);
            src.migration.migrate(link.uri());
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).startsWith("destination failed: section 'ram': ").contains("outside RAM block 'ram'");
            assertSourceIntact(info);
        }
    }

    protected static void flip(long pos, byte[] buf, int off, int len, long at) {
        if (at >= pos && at < pos + len) {
            buf[off + (int) (at - pos)] ^= (byte) 0x80;
        }
    }

    @Test
    void truncatedStreamFailsTheDestinationNamingTheSection() throws Exception {
        try (FaultyLink link = fixture.faultyLink(destination(IncomingOptions.defaults())).truncateAfterConfiguration(8)) {
            parameters(0);
            src.migration.migrate(link.uri());
            MigrationInfo info = finish();
            assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
            assertThat(info.errorDesc()).isEqualTo("destination failed: section 'ram': the stream ended early (truncated, or the source went away)");
            assertSourceIntact(info);
        }
    }

    @Test
    void destinationWithDifferentRamSizeRefusesBeforeAnyPage() throws Exception {
        TestVm.Spec d = fixture.destination(src.spec(), "dst");
        d.ram = 32L << 20;
        dst = TestVm.create(d);
        String uri = dst.migration.incoming(fixture.listenUri(), IncomingOptions.defaults());
        parameters(0);
        src.migration.migrate(fixture.sourceUri(uri));
        MigrationInfo info = finish();
        assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
        assertThat(info.errorDesc()).isEqualTo("destination failed: configuration mismatch: RAM block 'ram' is 16777216 bytes on the source and 33554432 bytes"
                + " here (-m must match)");
        assertThat(info.ram()).isNull();
        assertThat(dst.machine.memory().blocks().getFirst().segment().asSlice(TestVm.RANDOM_FROM, 1 << 20).mismatch(MemorySegment.ofArray(new byte[1 << 20])))
                .as("no page was written").isEqualTo(-1);
        assertSourceIntact(info);
    }

    @Test
    void destinationWithoutTheDeviceRefuses() throws Exception {
        TestVm.Spec d = fixture.destination(src.spec(), "dst");
        d.device = false;
        d.guest = false;
        dst = TestVm.create(d);
        String uri = dst.migration.incoming(fixture.listenUri(), IncomingOptions.defaults());
        parameters(0);
        src.migration.migrate(fixture.sourceUri(uri));
        MigrationInfo info = finish();
        assertThat(info.status()).isEqualTo(MigrationStatus.FAILED);
        assertThat(info.errorDesc()).startsWith("destination failed: configuration mismatch: ")
                .contains("device '" + TestVm.DEVICE + "' (" + TestVm.DEVICE_TYPE + ") of the source is missing here")
                .contains("drive '" + TestVm.DRIVE + "' of the source is missing here")
                .contains("section 'virtio-blk:" + TestVm.DEVICE + "' of the source has no device here");
        assertSourceIntact(info);
    }

    @Test
    void destinationKeepsWaitingAfterAFailedAttemptAndTakesTheNextOne() throws Exception {
        String uri = destination(new IncomingOptions(false, true));
        try (FaultyLink link = fixture.faultyLink(uri).truncateAfterConfiguration(8)) {
            parameters(0);
            src.migration.migrate(link.uri());
            assertThat(finish().status()).isEqualTo(MigrationStatus.FAILED);
        }
        assertThat(dst.migration.completion().isDone()).as("the destination still waits").isFalse();
        assertThat(src.machine.runState()).isEqualTo(RunState.RUNNING);
        src.migration.migrate(fixture.sourceUri(uri));
        MigrationInfo info = finish();
        assertThat(info.status()).isEqualTo(MigrationStatus.COMPLETED);
        assertThat(dst.migration.completion().get(10, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.COMPLETED);
        assertThat(TestVm.ramMismatch(src.machine, dst.machine)).isEqualTo(-1);
        assertThat(dst.checkDisk()).isNull();
    }
}
