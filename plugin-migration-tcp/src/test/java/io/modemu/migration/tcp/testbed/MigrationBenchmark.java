package io.modemu.migration.tcp.testbed;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;

/**
 * The migration benchmark (not a test): a 1 GiB guest whose RAM holds 512 MiB of random bytes, idle,
 * migrated between two processes over loopback TCP, each process loading the real plugin jars. Prints
 * {@code key=value} lines: the migration's total time, downtime and throughput, and the raw loopback
 * TCP throughput measured between the same two processes in the same run (the physical limit).
 * Run by {@code bench/migration-tcp}; sizes and channels can be changed with system properties
 * {@code bench.ram}, {@code bench.random}, {@code bench.multifd}, {@code bench.runs}.
 */
public final class MigrationBenchmark {
    private MigrationBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        String ram = System.getProperty("bench.ram", "1G");
        String random = System.getProperty("bench.random", "512M");
        String multifd = System.getProperty("bench.multifd", "0");
        int runs = Integer.getInteger("bench.runs", 3);
        Path work = Files.createTempDirectory("modemu-bench");
        // the references: raw loopback TCP from the source process to this one, measured by the source before it migrates, from a
        // hot 1 MiB buffer (the TCP stack's limit) and through memory the size of the random data (the limit for moving that memory)
        int rawPort = MigrationLauncher.rawSink();
        System.out.println("ram=" + ram);
        System.out.println("random=" + random);
        System.out.println("multifd_channels=" + multifd);
        for (int run = 1; run <= runs; run++) {
            Path dir = Files.createDirectories(work.resolve("run" + run));
            try (ChildJvm dst = ChildJvm.start(dir, "destination", List.of("role=destination", "ram=" + ram, "device=off", "digest=off",
                    "autostart=on", "settle=on"))) {
                String uri = dst.await("listening", Duration.ofMinutes(2));
                try (ChildJvm src = ChildJvm.start(dir, "source", List.of("role=source", "ram=" + ram, "device=off", "random=" + random, "digest=off",
                        "to=" + uri, "raw-port=" + rawPort, "raw-bytes=2G", "multifd=" + multifd, "settle=on"))) {
                    int code = src.waitFor(Duration.ofMinutes(10));
                    if (code != 0 || !"completed".equals(src.value("status"))) {
                        System.out.println("run" + run + "_status=" + src.value("status") + " (" + src.value("error") + "), see " + src.log());
                        System.exit(1);
                    }
                    if (dst.waitFor(Duration.ofMinutes(2)) != 0) {
                        System.out.println("run" + run + "_destination_failed=see " + dst.log());
                        System.exit(1);
                    }
                    double raw = Double.parseDouble(src.value("raw-mbit"));
                    double mig = Double.parseDouble(src.value("throughput-mbit"));
                    System.out.println("run" + run + "_total_ms=" + src.value("total-ms"));
                    System.out.println("run" + run + "_downtime_ms=" + src.value("downtime-ms"));
                    System.out.println("run" + run + "_setup_ms=" + src.value("setup-ms"));
                    System.out.println("run" + run + "_transferred_bytes=" + src.value("transferred-bytes"));
                    System.out.println("run" + run + "_throughput_mbit=" + src.value("throughput-mbit"));
                    System.out.println("run" + run + "_raw_loopback_mbit=" + src.value("raw-mbit"));
                    String rawRam = src.value("raw-ram-mbit");
                    if (rawRam != null) {
                        System.out.println("run" + run + "_raw_loopback_ram_mbit=" + rawRam);
                        System.out.println(String.format(Locale.ROOT, "run%d_throughput_vs_raw_ram=%.2f", run, mig / Double.parseDouble(rawRam)));
                    }
                    System.out.println("run" + run + "_source_cpu_ms=" + src.value("cpu-ms"));
                    System.out.println("run" + run + "_destination_cpu_ms=" + dst.value("cpu-ms"));
                    System.out.println(String.format(Locale.ROOT, "run%d_throughput_vs_raw=%.2f", run, mig / raw));
                }
            }
        }
    }
}
