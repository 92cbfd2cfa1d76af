package io.modemu.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The table's arithmetic on output shaped like each benchmark's: ratios, medians, targets. */
class BenchReportTest {
    @TempDir
    Path dir;

    private BenchReport.Row row(List<BenchReport.Row> rows, String figureStart, String referenceStart) {
        return rows.stream().filter(r -> r.figure().startsWith(figureStart) && r.reference().startsWith(referenceStart)).findFirst()
                .orElseThrow(() -> new AssertionError("no row " + figureStart + " / " + referenceStart + " in " + rows));
    }

    @Test
    void ratiosAndTargetsComeFromTheSameRunsFigures() throws Exception {
        Files.writeString(dir.resolve("virtio-blk.txt"), """
                qd=32
                null_backend_iops=4000000
                null_iops=800000
                null_ratio=0.200
                file_backend_iops=500000
                file_iops=460000
                file_ratio_near=0.930
                file_cross_cpu_round_trip_ns_near=110
                file_turns_near=device 9, backend 8
                file_ratio_by_window=median 0.910, quartiles 0.880-0.940, range 0.700-0.990 (10 windows)
                file_floor_ratio=0.940
                file_floor_ratio_near=0.950 (6 turns)
                file_floor_ratio_far=0.900 (3 turns)
                file_ratio_to_floor=0.979
                """);
        Files.writeString(dir.resolve("migration-tcp.txt"), """
                cpus=2
                ram=1G
                random=512M
                aot_run1_total_ms=900
                aot_run1_downtime_ms=8
                aot_run1_throughput_mbit=20000
                aot_run1_raw_loopback_mbit=25000
                aot_run2_total_ms=1100
                aot_run2_downtime_ms=12
                aot_run2_throughput_mbit=18000
                aot_run2_raw_loopback_mbit=30000
                run1_qemu_total_ms=4000
                run1_qemu_downtime_ms=30
                """);
        Files.writeString(dir.resolve("migration-rdma-sim.txt"), """
                ram=1G
                random=512M
                memcpy_mbit=80000
                tcp_total_ms=1000
                tcp_downtime_ms=9
                tcp_throughput_mbit=10000
                chunks_total_ms=400
                chunks_downtime_ms=4
                chunks_throughput_mbit=25000
                """);
        Files.writeString(dir.resolve("stop-latency.failed"), "1\n");
        List<BenchReport.Row> rows = BenchReport.rows(dir);

        BenchReport.Row nul = row(rows, "virtio-blk 4K random read QD32, null-co", "");
        assertThat(nul.value()).isEqualTo("800,000 IOPS");
        assertThat(nul.ratio()).isEqualTo("0.20");
        assertThat(nul.met()).isEqualTo("NO");
        assertThat(row(rows, "virtio-blk 4K random read QD32, file", "").met()).isEqualTo("yes");
        BenchReport.Row near = row(rows, "virtio-blk file: ratio in the turns with the processors near (round trip 110 ns)", "device 9");
        assertThat(near.value()).isEqualTo("0.930");
        assertThat(rows).noneMatch(r -> r.figure().contains("processors far"));
        assertThat(row(rows, "virtio-blk file: ratio window by window", "device turn").value()).startsWith("median 0.910");
        BenchReport.Row floor = row(rows, "virtio-blk file: the split-ring floor's ratio", "near 0.950 (6 turns), far 0.900 (3 turns)");
        assertThat(floor.value()).isEqualTo("0.940");
        assertThat(row(rows, "virtio-blk file: the device's ratio / the floor's", "").value()).isEqualTo("0.979");

        // medians of the runs: throughput 19000 vs raw 27500 = 0.69 < 0.70
        BenchReport.Row tput = row(rows, "tcp migration (1G RAM, 512M random, AOT-cached JVMs): throughput", "raw");
        assertThat(tput.ratio()).isEqualTo("0.69");
        assertThat(tput.met()).isEqualTo("NO");
        BenchReport.Row total = row(rows, "tcp migration (1G RAM, 512M random, AOT-cached JVMs): total time", "QEMU");
        assertThat(total.value()).isEqualTo("1,000 ms");
        assertThat(total.ratio()).isEqualTo("0.25");
        assertThat(total.met()).isEqualTo("yes");
        assertThat(row(rows, "tcp migration (1G RAM, 512M random, AOT-cached JVMs): downtime", "QEMU").met()).isEqualTo("yes");

        assertThat(row(rows, "rdma-sim migration (1G RAM, 512M random): throughput", "TCP").met()).isEqualTo("yes");
        BenchReport.Row memcpy = row(rows, "rdma-sim migration (1G RAM, 512M random): throughput", "memory copy");
        assertThat(memcpy.ratio()).isEqualTo("0.31");
        assertThat(memcpy.met()).isEqualTo("NO");
        assertThat(row(rows, "rdma-sim migration (1G RAM, 512M random): downtime", "").met()).isEqualTo("yes");

        assertThat(row(rows, "stop-latency", "").value()).isEqualTo("FAILED");
        assertThat(row(rows, "stop-latency", "").reference()).startsWith("exit 1, see ");
        assertThat(row(rows, "startup", "").value()).isEqualTo("not run");
        assertThat(BenchReport.format(rows)).contains("| figure").contains("800,000 IOPS");
    }

    @Test
    void aRatioTargetWithoutItsReferenceIsNotJudged() throws Exception {
        Files.writeString(dir.resolve("migration-tcp.txt"), """
                ram=1G
                random=512M
                aot_run1_total_ms=900
                aot_run1_downtime_ms=8
                aot_run1_throughput_mbit=20000
                aot_run1_raw_loopback_mbit=25000
                qemu=not run (install qemu-system-misc opensbi u-boot-qemu, or QEMU=off was given)
                """);
        BenchReport.Row total = row(BenchReport.rows(dir), "tcp migration", "QEMU 7.2 migration (not run");
        assertThat(total.refValue()).isEqualTo("n/a");
        assertThat(total.met()).isEqualTo("n/a");
    }

    @Test
    void aFailedMigrationRunIsShownAsFailed() throws Exception {
        Files.writeString(dir.resolve("migration-tcp.txt"), """
                aot_run1_status=failed (boom), see /tmp/x
                """);
        assertThat(BenchReport.rows(dir)).anySatisfy(r -> assertThat(r.reference()).startsWith("aot_run1_status"));
    }

    @Test
    void medianOfMatchingKeys() {
        var kv = BenchReport.parse("run1_x=3\nrun2_x=1\nrun3_x=2\nrun1_y=100\nnote=a=b\n");
        assertThat(BenchReport.median(kv, Pattern.compile("run\\d+_x"))).isEqualTo(2.0);
        assertThat(kv.get("note")).isEqualTo("a=b");
        assertThat(BenchReport.median(kv, Pattern.compile("none"))).isNull();
    }
}
