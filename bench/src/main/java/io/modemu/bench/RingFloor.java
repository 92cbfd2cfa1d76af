package io.modemu.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The split-ring floor: {@code bench/src/main/c/ring_floor.c} (built by {@code bench/run}) as a child
 * process, one turn at a time between the benchmark's own turns. Each turn runs the same random reads
 * straight from the file and through a minimal split-ring exchange between two threads in C, so the
 * ratio of the two is about what any virtio-blk implementation serving the same guest could reach on
 * this host at that moment.
 */
final class RingFloor implements AutoCloseable {
    /** One turn: IOPS of the C reference (preads back to back) and of the C model (guest, ring, device). */
    record Turn(double referenceIops, double modelIops) {
    }

    private final Process process;
    private final OutputStream commands;
    private final BufferedReader answers;

    private RingFloor(Process process) {
        this.process = process;
        this.commands = process.getOutputStream();
        this.answers = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.US_ASCII));
    }

    /** Starts {@code binary} on {@code file}; its errors go to this process's standard error. */
    static RingFloor start(Path binary, Path file, int qd, int bs, long turnMillis) throws IOException {
        Process p = new ProcessBuilder(List.of(binary.toString(), file.toString(), Integer.toString(qd), Integer.toString(bs),
                Long.toString(turnMillis))).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        return new RingFloor(p);
    }

    /** Runs one reference turn and one model turn; blocks for both. */
    Turn turn() throws IOException {
        try {
            commands.write("turn\n".getBytes(StandardCharsets.US_ASCII));
            commands.flush();
        } catch (IOException e) {
            // it ended before reading the command (its message went to standard error)
            throw new IOException("ring_floor ended" + exitNote(), e);
        }
        String line = answers.readLine();
        if (line == null) {
            throw new IOException("ring_floor ended" + exitNote());
        }
        return parse(line);
    }

    static Turn parse(String line) throws IOException {
        double reference = Double.NaN;
        double model = Double.NaN;
        for (String field : line.trim().split(" ")) {
            String[] kv = field.split("=", 2);
            if (kv.length == 2 && kv[0].equals("reference_iops")) {
                reference = Double.parseDouble(kv[1]);
            } else if (kv.length == 2 && kv[0].equals("model_iops")) {
                model = Double.parseDouble(kv[1]);
            }
        }
        if (!(reference > 0) || !(model >= 0)) {
            throw new IOException("ring_floor answered '" + line + "', expected reference_iops=N model_iops=N");
        }
        return new Turn(reference, model);
    }

    private String exitNote() {
        try {
            return process.waitFor(5, TimeUnit.SECONDS) ? " with exit status " + process.exitValue() : " (still running)";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "";
        }
    }

    @Override
    public void close() {
        try {
            commands.close();
        } catch (IOException e) {
            // it has ended already
        }
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
