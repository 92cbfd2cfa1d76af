package io.modemu.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The table of {@code bench/run all}: reads the {@code key=value} output that each benchmark left in a
 * directory ({@code NAME.txt}; {@code NAME.failed} holds the exit code of one that failed) and prints one
 * row per figure: its value, the reference measured in the same run, their ratio, the target and
 * whether it is met. It measures nothing itself and holds no figure of its own.
 *
 * <p>Usage: {@code BenchReport DIR}. Exit code 0 (a target not met is a finding, not an error).
 */
public final class BenchReport {
    /** The benchmarks of {@code bench/run all}, in the table's order. */
    static final List<String> BENCHMARKS = List.of("virtio-blk", "migration-tcp", "migration-rdma-sim", "stop-latency", "startup");

    private BenchReport() {
    }

    /** What a figure must reach: on its own value, or on its ratio to the reference. */
    record Target(String kind, double bound) {
        static final Target NONE = new Target("none", 0);

        static Target atLeast(double v) {
            return new Target("min", v);
        }

        static Target atMost(double v) {
            return new Target("max", v);
        }

        static Target ratioAtLeast(double r) {
            return new Target("ratio-min", r);
        }

        static Target ratioAtMost(double r) {
            return new Target("ratio-max", r);
        }

        String describe(String unit) {
            return switch (kind) {
                case "min" -> ">= " + String.format(Locale.ROOT, "%,d", (long) bound) + " " + unit;
                case "max" -> "<= " + String.format(Locale.ROOT, "%,d", (long) bound) + " " + unit;
                case "ratio-min" -> ">= " + trim(bound) + " x ref";
                case "ratio-max" -> "<= " + trim(bound) + " x ref";
                default -> "-";
            };
        }

        /** "yes", "NO", "-" (no target) or "n/a" (the target is a ratio and the reference is missing). */
        String met(Double value, Double ref) {
            if (kind.equals("none")) {
                return "-";
            }
            if (value == null) {
                return "n/a";
            }
            return switch (kind) {
                case "min" -> value >= bound ? "yes" : "NO";
                case "max" -> value <= bound ? "yes" : "NO";
                default -> {
                    if (ref == null || ref == 0) {
                        yield "n/a";
                    }
                    double r = value / ref;
                    yield (kind.equals("ratio-min") ? r >= bound : r <= bound) ? "yes" : "NO";
                }
            };
        }
    }

    record Row(String figure, String value, String reference, String refValue, String ratio, String target, String met) {
        static Row of(String figure, String unit, Double value, String reference, Double ref, Target target) {
            return new Row(figure, value == null ? "missing" : number(value, unit) + " " + unit, reference,
                    ref == null ? "n/a" : number(ref, unit) + " " + unit,
                    value == null || ref == null || ref == 0 ? "-" : String.format(Locale.ROOT, "%.2f", value / ref),
                    target.describe(unit), target.met(value, ref));
        }

        static Row note(String figure, String value, String detail) {
            return new Row(figure, value, detail, "", "", "", "");
        }
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: BenchReport DIR   (DIR holds NAME.txt per benchmark, as bench/run all leaves it)");
            System.exit(2);
        }
        List<Row> rows = rows(Path.of(args[0]));
        System.out.print(format(rows));
        long met = rows.stream().filter(r -> r.met().equals("yes")).count();
        long missed = rows.stream().filter(r -> r.met().equals("NO")).count();
        long unknown = rows.stream().filter(r -> r.met().equals("n/a")).count();
        System.out.println();
        System.out.println("targets: " + met + " met, " + missed + " not met" + (unknown > 0 ? ", " + unknown + " without a value or reference" : ""));
    }

    /** The rows of every benchmark found in {@code dir}. */
    static List<Row> rows(Path dir) throws IOException {
        List<Row> rows = new ArrayList<>();
        for (String name : BENCHMARKS) {
            Path failed = dir.resolve(name + ".failed");
            Path out = dir.resolve(name + ".txt");
            if (Files.exists(failed)) {
                rows.add(Row.note(name, "FAILED", "exit " + Files.readString(failed).trim() + ", see " + dir.resolve(name + ".log")));
                continue;
            }
            if (!Files.exists(out)) {
                rows.add(Row.note(name, "not run", ""));
                continue;
            }
            Map<String, String> kv = parse(Files.readString(out));
            switch (name) {
                case "virtio-blk" -> virtioBlk(kv, rows);
                case "migration-tcp" -> migrationTcp(kv, rows);
                case "migration-rdma-sim" -> migrationRdmaSim(kv, rows);
                case "stop-latency" -> stopLatency(kv, rows);
                case "startup" -> startup(kv, rows);
                default -> throw new IllegalStateException(name);
            }
        }
        return rows;
    }

    static Map<String, String> parse(String text) {
        Map<String, String> kv = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0 && !line.substring(0, eq).contains(" ")) {
                kv.put(line.substring(0, eq).trim(), line.substring(eq + 1).trim());
            }
        }
        return kv;
    }

    private static void virtioBlk(Map<String, String> kv, List<Row> rows) {
        String qd = kv.getOrDefault("qd", "?");
        rows.add(Row.of("virtio-blk 4K random read QD" + qd + ", null-co", "IOPS", num(kv, "null_iops"),
                "same reads straight to the backend", num(kv, "null_backend_iops"), Target.atLeast(1_000_000)));
        rows.add(Row.of("virtio-blk 4K random read QD" + qd + ", file (page cache)", "IOPS", num(kv, "file_iops"),
                "same reads straight to the backend", num(kv, "file_backend_iops"), Target.ratioAtLeast(0.9)));
        // how the host's noise spreads the ratio from one half-second window to the next: informative only
        if (kv.containsKey("file_ratio_by_window")) {
            rows.add(Row.note("virtio-blk file: ratio window by window", kv.get("file_ratio_by_window"), "device turn / the backend turn next to it"));
        }
        // the same ratio split by where the host had the VM's two processors (CrossCpuProbe): informative only
        for (String where : List.of("near", "far")) {
            if (kv.containsKey("file_ratio_" + where)) {
                rows.add(Row.note("virtio-blk file: ratio in the turns with the processors " + where + " (round trip "
                        + kv.getOrDefault("file_cross_cpu_round_trip_ns_" + where, "?") + " ns)", kv.get("file_ratio_" + where),
                        kv.getOrDefault("file_turns_" + where, "")));
            }
        }
        // the split-ring floor (a minimal device in C, bench/src/main/c/ring_floor.c) in the same run: what any
        // implementation could reach on this host at the time; informative only
        if (kv.containsKey("file_floor_ratio")) {
            String detail = Stream.of("near", "far").filter(w -> kv.containsKey("file_floor_ratio_" + w))
                    .map(w -> w + " " + kv.get("file_floor_ratio_" + w)).collect(Collectors.joining(", "));
            rows.add(Row.note("virtio-blk file: the split-ring floor's ratio (minimal C device)", kv.get("file_floor_ratio"), detail));
            rows.add(Row.note("virtio-blk file: the device's ratio / the floor's", kv.getOrDefault("file_ratio_to_floor", "missing"),
                    "1.0: as good as the minimal C device"));
        }
        // per CPU-second with every context on one thread: what other load on the machine does not disturb
        for (String d : List.of("null", "file")) {
            if (kv.containsKey(d + "_one_core_iops_per_cpu_second")) {
                rows.add(Row.of("virtio-blk " + (d.equals("null") ? "null-co" : "file") + ", one core, per CPU-second", "IOPS",
                        num(kv, d + "_one_core_iops_per_cpu_second"), "same reads straight to the backend, one core",
                        num(kv, d + "_one_core_backend_iops_per_cpu_second"), Target.NONE));
            }
        }
    }

    private static void migrationTcp(Map<String, String> kv, List<Row> rows) {
        String size = kv.getOrDefault("ram", "?") + " RAM, " + kv.getOrDefault("random", "?") + " random";
        Double qemuTotal = median(kv, Pattern.compile("run\\d+_qemu_total_ms"));
        Double qemuDown = median(kv, Pattern.compile("run\\d+_qemu_downtime_ms"));
        String qemuRef = kv.containsKey("qemu") ? "QEMU 7.2 migration (" + kv.get("qemu") + ")" : "QEMU 7.2 migration, same guest";
        TreeSet<String> modes = new TreeSet<>();
        Matcher m = Pattern.compile("^([a-z]+)_run\\d+_(total_ms|status)$", Pattern.MULTILINE).matcher(String.join("\n", kv.keySet()));
        while (m.find()) {
            modes.add(m.group(1));
        }
        if (modes.isEmpty()) {
            rows.add(Row.note("migration-tcp", "missing", "no run found in its output"));
        }
        for (String mode : modes.descendingSet()) {
            String label = "tcp migration (" + size + (mode.equals("aot") ? ", AOT-cached JVMs" : mode.equals("plain") ? ", cold JVMs" : ", " + mode) + ")";
            String failed = kv.keySet().stream().filter(k -> k.matches(mode + "_run\\d+_(status|destination_failed)"))
                    .map(k -> k + "=" + kv.get(k)).findFirst().orElse(null);
            if (failed != null) {
                rows.add(Row.note(label, "FAILED", failed));
                continue;
            }
            rows.add(Row.of(label + ": throughput", "Mbit/s", median(kv, Pattern.compile(mode + "_run\\d+_throughput_mbit")),
                    "raw loopback TCP from a hot 1 MiB buffer, same run", median(kv, Pattern.compile(mode + "_run\\d+_raw_loopback_mbit")),
                    Target.ratioAtLeast(0.70)));
            Double rawRam = median(kv, Pattern.compile(mode + "_run\\d+_raw_loopback_ram_mbit"));
            if (rawRam != null) {
                rows.add(Row.of(label + ": throughput", "Mbit/s", median(kv, Pattern.compile(mode + "_run\\d+_throughput_mbit")),
                        "raw loopback TCP from and into memory of the random data's size, same run", rawRam, Target.ratioAtLeast(0.70)));
            }
            rows.add(Row.of(label + ": total time", "ms", median(kv, Pattern.compile(mode + "_run\\d+_total_ms")),
                    qemuRef + ": total time", qemuTotal, Target.ratioAtMost(0.25)));
            rows.add(Row.of(label + ": downtime", "ms", median(kv, Pattern.compile(mode + "_run\\d+_downtime_ms")),
                    qemuRef + ": downtime", qemuDown, Target.atMost(10)));
        }
    }

    private static void migrationRdmaSim(Map<String, String> kv, List<Row> rows) {
        String size = kv.getOrDefault("ram", "?") + " RAM, " + kv.getOrDefault("random", "?") + " random";
        Double tcp = num(kv, "tcp_throughput_mbit");
        Double memcpy = num(kv, "memcpy_mbit");
        for (String variant : List.of("chunks", "pin-all")) {
            if (!kv.containsKey(variant + "_throughput_mbit")) {
                continue;
            }
            String label = "rdma-sim migration (" + size + (variant.equals("chunks") ? "" : ", pin-all") + ")";
            Double mbit = num(kv, variant + "_throughput_mbit");
            rows.add(Row.of(label + ": throughput", "Mbit/s", mbit, "TCP migration, same harness and run", tcp, Target.ratioAtLeast(2)));
            rows.add(Row.of(label + ": throughput", "Mbit/s", mbit, "memory copy, same run", memcpy, Target.ratioAtLeast(0.35)));
            rows.add(Row.of(label + ": total time", "ms", num(kv, variant + "_total_ms"), "TCP migration, same harness and run",
                    num(kv, "tcp_total_ms"), Target.NONE));
            rows.add(Row.of(label + ": downtime", "ms", num(kv, variant + "_downtime_ms"), "TCP migration, same harness and run",
                    num(kv, "tcp_downtime_ms"), Target.atMost(5)));
        }
    }

    private static void stopLatency(Map<String, String> kv, List<Row> rows) {
        String qd = kv.getOrDefault("qd", "64");
        String label = "VM stop, " + qd + " requests in flight";
        rows.add(Row.of(label + ", p50", "us", num(kv, "stop" + qd + "_p50_us"), "same VM stop, 0 in flight, p50", num(kv, "stop0_p50_us"), Target.NONE));
        rows.add(Row.of(label + ", p99", "us", num(kv, "stop" + qd + "_p99_us"), "same VM stop, 0 in flight, p99", num(kv, "stop0_p99_us"), Target.NONE));
        rows.add(Row.of(label + ", max", "us", num(kv, "stop" + qd + "_max_us"), "null-co latency (no drain beats it)", num(kv, "null_latency_us"), Target.NONE));
        rows.add(Row.of(label + ", p50 beyond the I/O's remaining time", "us", num(kv, "stop" + qd + "_over_floor_p50_us"),
                "same VM stop, 0 in flight, p50", num(kv, "stop0_p50_us"), Target.NONE));
    }

    private static void startup(Map<String, String> kv, List<Row> rows) {
        String label = "process start to VM running, bin/modemu";
        Double bare = num(kv, "bare_jvm_ms");
        Double qemu = num(kv, "qemu_running_ms");
        String qemuRef = qemu == null ? "QEMU start to running (" + kv.getOrDefault("qemu_vm", "not run") + ")" : "QEMU start to running";
        rows.add(Row.of(label, "ms", num(kv, "modemu_running_ms"), "bare JVM start to exit, launcher's options", bare, Target.NONE));
        rows.add(Row.of(label, "ms", num(kv, "modemu_running_ms"), qemuRef, qemu, Target.NONE));
        if (kv.containsKey("modemu_aot_running_ms")) {
            rows.add(Row.of(label + " + AOT cache", "ms", num(kv, "modemu_aot_running_ms"), "bare JVM start to exit, launcher's options", bare, Target.NONE));
            rows.add(Row.of(label + " + AOT cache", "ms", num(kv, "modemu_aot_running_ms"), qemuRef, qemu, Target.NONE));
        }
    }

    static Double num(Map<String, String> kv, String key) {
        String v = kv.get(key);
        if (v == null) {
            return null;
        }
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /** The median of the numeric values whose keys match, or null if none does. */
    static Double median(Map<String, String> kv, Pattern keys) {
        List<Double> xs = new ArrayList<>();
        for (var e : kv.entrySet()) {
            if (keys.matcher(e.getKey()).matches()) {
                Double d = num(kv, e.getKey());
                if (d != null) {
                    xs.add(d);
                }
            }
        }
        if (xs.isEmpty()) {
            return null;
        }
        xs.sort(null);
        int n = xs.size();
        return n % 2 == 1 ? xs.get(n / 2) : (xs.get(n / 2 - 1) + xs.get(n / 2)) / 2;
    }

    static String number(double v, String unit) {
        if (unit.equals("ms") || unit.equals("us")) {
            return Math.abs(v) >= 100 ? String.format(Locale.ROOT, "%,.0f", v) : String.format(Locale.ROOT, "%.1f", v);
        }
        return String.format(Locale.ROOT, "%,.0f", v);
    }

    private static String trim(double v) {
        return v == Math.rint(v) ? String.valueOf((long) v) : String.valueOf(v);
    }

    /** A Markdown table, columns padded so that it reads as well in a terminal. */
    static String format(List<Row> rows) {
        String[] head = {"figure", "value", "reference (same run)", "reference value", "ratio", "target", "met"};
        List<String[]> cells = new ArrayList<>();
        cells.add(head);
        for (Row r : rows) {
            cells.add(new String[] {r.figure(), r.value(), r.reference(), r.refValue(), r.ratio(), r.target(), r.met()});
        }
        int[] w = new int[head.length];
        for (String[] c : cells) {
            for (int i = 0; i < c.length; i++) {
                w[i] = Math.max(w[i], c[i].length());
            }
        }
        StringBuilder sb = new StringBuilder();
        for (int k = 0; k < cells.size(); k++) {
            String[] c = cells.get(k);
            sb.append('|');
            for (int i = 0; i < c.length; i++) {
                boolean right = i == 1 || i == 3 || i == 4;
                sb.append(' ').append(right ? pad(c[i], w[i], true) : pad(c[i], w[i], false)).append(" |");
            }
            sb.append('\n');
            if (k == 0) {
                sb.append('|');
                for (int i = 0; i < c.length; i++) {
                    sb.append(' ').append("-".repeat(w[i] - ((i == 1 || i == 3 || i == 4) ? 1 : 0))).append((i == 1 || i == 3 || i == 4) ? ":" : "").append(" |");
                }
                sb.append('\n');
            }
        }
        return sb.toString();
    }

    private static String pad(String s, int w, boolean right) {
        String sp = " ".repeat(w - s.length());
        return right ? sp + s : s + sp;
    }
}
