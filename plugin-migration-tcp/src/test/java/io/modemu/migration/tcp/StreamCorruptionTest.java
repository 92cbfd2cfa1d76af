package io.modemu.migration.tcp;

import static org.assertj.core.api.Assertions.assertThat;

import io.modemu.aio.AioContext;
import io.modemu.machine.RunState;
import io.modemu.migration.IncomingOptions;
import io.modemu.migration.MigrationInfo;
import io.modemu.migration.MigrationParameters;
import io.modemu.migration.MigrationStatus;
import io.modemu.migration.tcp.testbed.BuiltIn;
import io.modemu.migration.tcp.testbed.FaultyProxy;
import io.modemu.migration.tcp.testbed.TestVm;
import io.modemu.migration.testkit.ScriptedTransport;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A recorded migration stream, cut short and damaged in many places, replayed into fresh destinations:
 * a cut or a damaged record header, configuration or device section fails with an error that names
 * the section (record headers are covered by a running checksum); only damaged page data, which
 * carries no checksum, goes unnoticed. None starts the VM after a failure, none fails
 * with anything but a stream error (no index, null or allocation error escaping a parser), and no
 * event loop reports an uncaught error.
 */
class StreamCorruptionTest {
    private static final ScriptedTransport REPLAY = new ScriptedTransport();
    private static byte[] stream;
    private static TestVm.Spec spec;
    @TempDir
    static Path dir;

    @BeforeAll
    static void record() throws Exception {
        spec = new TestVm.Spec();
        spec.name = "src";
        spec.ram = 4L << 20;
        spec.disk = TestVm.newDisk(dir, 1L << 20);
        spec.diskLatencyNs = 200_000;
        spec.contributions = BuiltIn.contributions(new TcpTransport(), REPLAY);
        try (TestVm src = TestVm.create(spec); TestVm dst = TestVm.create(spec.destination("dst"))) {
            src.fillRandom(3);
            src.start();
            src.awaitGuestProgress(200, Duration.ofSeconds(30));
            String uri = dst.migration.incoming("tcp:127.0.0.1:0", IncomingOptions.defaults());
            try (FaultyProxy proxy = new FaultyProxy(uri.substring(4)).record()) {
                src.migration.setParameters(MigrationParameters.defaults().withMaxBandwidth(0));
                src.migration.migrate(proxy.uri());
                assertThat(src.migration.completion().get(60, TimeUnit.SECONDS).status()).isEqualTo(MigrationStatus.COMPLETED);
                stream = proxy.recorded();
            }
        }
        assertThat(stream.length).isGreaterThan(1 << 20);
    }

    private MigrationInfo replay(String name, byte[] bytes) throws Exception {
        REPLAY.incoming(name, List.of(bytes));
        try (TestVm dst = TestVm.create(spec.destination("replay"))) {
            dst.migration.incoming("scripted:" + name, new IncomingOptions(false, false));
            MigrationInfo info = dst.migration.completion().get(60, TimeUnit.SECONDS);
            if (info.status() == MigrationStatus.FAILED) {
                assertThat(dst.machine.runState()).as("%s: the VM never starts after a failure", name).isEqualTo(RunState.INMIGRATE);
            } else {
                assertThat(dst.machine.runState()).isEqualTo(RunState.PAUSED);
            }
            List<AioContext> loops = new ArrayList<>(dst.machine.iothreads().values());
            loops.add(dst.machine.mainLoop());
            for (AioContext c : loops) {
                assertThat(c.uncaughtErrors()).as("%s: uncaught errors on %s: %s", name, c, c.firstUncaughtError()).isZero();
            }
            return info;
        }
    }

    private static void assertNamesASection(String name, MigrationInfo info) {
        assertThat(info.status()).as(name).isEqualTo(MigrationStatus.FAILED);
        assertThat(info.errorDesc()).as(name).matches("(cancelled \\()?section '[^']+': .*|configuration mismatch: .*")
                .doesNotContain("IndexOutOfBounds", "NullPointer", "NegativeArraySize", "OutOfMemory", "ClassCast", "IllegalArgument", "Arithmetic");
    }

    @Test
    void theRecordedStreamReplaysCompletely() throws Exception {
        assertThat(replay("intact", stream).status()).isEqualTo(MigrationStatus.COMPLETED);
    }

    @Test
    void aStreamCutAnywhereFailsNamingTheSection() throws Exception {
        List<Integer> cuts = new ArrayList<>();
        for (int i = 0; i <= 64; i++) {
            cuts.add(i);
        }
        SplittableRandom r = new SplittableRandom(11);
        for (int i = 0; i < 40; i++) {
            cuts.add(r.nextInt(stream.length));
        }
        for (int i = 1; i <= 24; i++) {
            cuts.add(stream.length - i);
        }
        for (int cut : cuts) {
            byte[] b = java.util.Arrays.copyOf(stream, cut);
            MigrationInfo info = replay("cut-" + cut, b);
            assertNamesASection("cut at " + cut, info);
            assertThat(info.errorDesc()).as("cut at %d", cut).contains("the stream ended");
        }
    }

    /**
     * Where the records of the recorded stream start, found by walking it with the layout documented
     * in the platform's {@code io.modemu.migration.internal.Wire}: a 32-byte stream header, then
     * 16-byte record headers ({@code u8 type, u8 flags, u16 a, u32 b, u64 c}) each followed by its payload.
     */
    private static List<int[]> records() {
        List<int[]> out = new ArrayList<>();
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(stream);
        int pos = 32;
        while (pos + 16 <= stream.length) {
            int type = stream[pos] & 0xff;
            long len = Integer.toUnsignedLong(b.getInt(pos + 4));
            long payload = switch (type) {
                case 0x01, 0x06 -> len; // CONFIG, DEVICE
                case 0x02 -> len * 4096; // PAGES
                default -> 0;
            };
            out.add(new int[] {pos, type, (int) payload});
            pos += 16 + (int) payload;
        }
        assertThat(pos).as("the walk ends at the end of the stream").isEqualTo(stream.length);
        return out;
    }

    @Test
    void damagedRecordHeadersAndCheckedPayloadsFailNamingTheSection() throws Exception {
        List<int[]> records = records();
        assertThat(records.stream().map(rec -> rec[1]).distinct()).as("record types in the recording")
                .contains(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x08, 0x09);
        SplittableRandom r = new SplittableRandom(12);
        int failed = 0;
        for (int i = 0; i < 200; i++) {
            int[] rec = records.get(r.nextInt(records.size()));
            int type = rec[1];
            int pos;
            int field;
            if ((type == 0x01 || type == 0x06) && r.nextBoolean()) {
                pos = rec[0] + 16 + r.nextInt(Math.max(1, rec[2])); // checksummed payload
                field = -1;
            } else {
                field = r.nextInt(16);
                pos = rec[0] + field;
            }
            byte[] b = stream.clone();
            int bit = r.nextInt(8);
            b[pos] ^= (byte) (1 << bit);
            MigrationInfo info = replay("flip-" + pos + "-" + bit, b);
            assertNamesASection("bit " + bit + " flipped at " + pos + " (type 0x" + Integer.toHexString(type) + ", header byte " + field + ")", info);
            failed++;
        }
        assertThat(failed).isEqualTo(200);
    }

    @Test
    void damagedPageDataPassesUnnoticedAsDocumented() throws Exception {
        int[] pages = records().stream().filter(rec -> rec[1] == 0x02).findFirst().orElseThrow();
        byte[] b = stream.clone();
        b[pages[0] + 16 + 100] ^= 1;
        assertThat(replay("page-data", b).status()).as("page data carries no checksum (pages change under the send)")
                .isEqualTo(MigrationStatus.COMPLETED);
    }
}
