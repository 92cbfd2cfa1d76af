package io.modemu.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.modemu.monitor.QmpClient;
import io.modemu.monitor.QmpError;
import io.modemu.options.Sizes;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code modemu migrate SOCKET URI}: starts a live migration on the VM behind a QMP socket, shows a
 * progress bar until it ends, then the final statistics. Ctrl-C cancels the migration cleanly (the
 * source keeps running). Exits 0 when the migration completed.
 */
@Command(name = "migrate", description = {"Live-migrate the VM behind a QMP socket to URI, with a progress bar.",
        "Ctrl-C (SIGINT) or SIGTERM cancels the migration; the source VM keeps running.",
        "Example: modemu migrate /tmp/src.sock tcp:127.0.0.1:4444"})
public final class MigrateCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "SOCKET", description = "QMP socket of the source: a unix socket path or tcp:HOST:PORT")
    String socket;

    @Parameters(index = "1", paramLabel = "URI", description = "destination, for example tcp:127.0.0.1:4444 or rdma-sim:127.0.0.1:4445")
    String uri;

    @Option(names = "--downtime-limit", paramLabel = "MS", description = "maximum downtime in milliseconds (QEMU's default: 300)")
    Long downtimeLimit;

    @Option(names = "--max-bandwidth", paramLabel = "BYTES/S", description = "bandwidth cap in bytes per second, suffixes allowed (0: no cap)")
    String maxBandwidth;

    @Option(names = "--multifd-channels", paramLabel = "N", description = "parallel connections")
    Integer channels;

    @Option(names = "--auto-converge", description = "throttle the vCPUs while the guest dirties memory faster than it is sent")
    boolean autoConverge;

    @Option(names = "--plain", description = "no progress bar: one status line per second (for logs)")
    boolean plain;

    private final AtomicBoolean finished = new AtomicBoolean();

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        try (QmpClient c = QmpClient.open(socket)) {
            Map<String, Object> params = new LinkedHashMap<>();
            if (downtimeLimit != null) {
                params.put("downtime-limit", downtimeLimit);
            }
            if (maxBandwidth != null) {
                params.put("max-bandwidth", maxBandwidth.equals("0") ? Long.MAX_VALUE : Sizes.parse(maxBandwidth, "--max-bandwidth"));
            }
            if (channels != null) {
                params.put("multifd-channels", channels);
            }
            if (!params.isEmpty()) {
                c.execute("migrate-set-parameters", params);
            }
            if (autoConverge) {
                c.execute("migrate-set-capabilities", Map.of("capabilities", List.of(Map.of("capability", "auto-converge", "state", true))));
            }
            Thread cancel = new Thread(this::cancelOnInterrupt, "migrate-cancel");
            Runtime.getRuntime().addShutdownHook(cancel);
            c.execute("migrate", Map.of("uri", uri));
            JsonNode info = null;
            ProgressBar bar = new ProgressBar(out, !plain && System.console() != null);
            long lastPlain = 0;
            while (true) {
                info = c.execute("query-migrate", Map.of());
                String status = info.path("status").asText();
                if (bar.fancy()) {
                    bar.render(info);
                } else if (System.nanoTime() - lastPlain > 1_000_000_000L) {
                    out.println(ProgressBar.line(info));
                    lastPlain = System.nanoTime();
                }
                if (status.equals("completed") || status.equals("failed") || status.equals("cancelled")) {
                    break;
                }
                Thread.sleep(100);
            }
            finished.set(true);
            try {
                Runtime.getRuntime().removeShutdownHook(cancel);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running: it sees finished and does nothing
            }
            bar.finish();
            out.println(summary(info));
            return info.path("status").asText().equals("completed") ? 0 : 1;
        } catch (QmpError e) {
            spec.commandLine().getErr().println("modemu: migrate: " + e.desc());
            return 1;
        } catch (IOException e) {
            spec.commandLine().getErr().println("modemu: migrate: " + e.getMessage());
            return 1;
        }
    }

    /** Ctrl-C: ask the source to cancel and wait until it says cancelled (or failed/completed). */
    private void cancelOnInterrupt() {
        if (finished.get()) {
            return;
        }
        System.err.println();
        System.err.println("modemu: cancelling the migration (the source VM keeps running)...");
        try (QmpClient c = QmpClient.open(socket)) {
            c.execute("migrate_cancel", Map.of());
            for (int i = 0; i < 300; i++) {
                String s = c.execute("query-migrate", Map.of()).path("status").asText();
                if (!s.equals("cancelling") && !s.equals("active") && !s.equals("setup") && !s.equals("device")) {
                    System.err.println("modemu: migration " + s);
                    return;
                }
                Thread.sleep(20);
            }
        } catch (IOException | RuntimeException | InterruptedException e) {
            System.err.println("modemu: could not cancel the migration: " + e.getMessage());
        }
    }

    static String summary(JsonNode i) {
        JsonNode ram = i.path("ram");
        StringBuilder sb = new StringBuilder();
        sb.append("migration ").append(i.path("status").asText());
        if (i.has("error-desc")) {
            sb.append(": ").append(i.path("error-desc").asText());
        }
        sb.append(String.format(Locale.ROOT, "%n  total time      %,d ms%n  downtime        %s%n  setup time      %,d ms%n  transferred     %s%n  throughput      %.0f Mbit/s%n  passes          %d%n  zero pages      %,d%n  normal pages    %,d",
                i.path("total-time").asLong(), i.has("downtime") ? i.path("downtime").asLong() + " ms" : "-",
                i.path("setup-time").asLong(), Sizes.human(ram.path("transferred").asLong()), ram.path("mbps").asDouble(),
                ram.path("dirty-sync-count").asLong(), ram.path("duplicate").asLong(), ram.path("normal").asLong()));
        return sb.toString();
    }

    /** A one-line progress bar redrawn in place. */
    static final class ProgressBar {
        private final PrintWriter out;
        private final boolean fancy;
        private int lastWidth;

        ProgressBar(PrintWriter out, boolean fancy) {
            this.out = out;
            this.fancy = fancy;
        }

        boolean fancy() {
            return fancy;
        }

        static String line(JsonNode i) {
            JsonNode ram = i.path("ram");
            long remaining = ram.path("remaining").asLong();
            long transferred = ram.path("transferred").asLong();
            return String.format(Locale.ROOT, "%-10s %s sent, %s remaining, %.0f Mbit/s, pass %d, expected downtime %s",
                    i.path("status").asText(), Sizes.human(transferred), Sizes.human(remaining), ram.path("mbps").asDouble(),
                    ram.path("dirty-sync-count").asLong(),
                    i.has("expected-downtime") ? i.path("expected-downtime").asLong() + " ms" : "-");
        }

        void render(JsonNode i) {
            JsonNode ram = i.path("ram");
            long total = ram.path("total").asLong();
            long remaining = ram.path("remaining").asLong();
            double done = total <= 0 ? 0 : Math.max(0, Math.min(1, 1.0 - (double) remaining / total));
            if (i.path("status").asText().equals("completed")) {
                done = 1;
            }
            int width = 30;
            int full = (int) Math.round(done * width);
            String bar = "\u2588".repeat(full) + "\u2591".repeat(width - full);
            String text = String.format(Locale.ROOT, "\r%s %3.0f%%  %s", bar, done * 100, line(i));
            int pad = Math.max(0, lastWidth - text.length());
            out.print(text + " ".repeat(pad));
            out.flush();
            lastWidth = text.length();
        }

        void finish() {
            if (fancy) {
                out.println();
            }
        }
    }
}
