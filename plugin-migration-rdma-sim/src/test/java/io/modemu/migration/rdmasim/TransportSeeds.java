package io.modemu.migration.rdmasim;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Starting points for {@link TransportFuzzing}, checked in under {@code TransportFuzzTestInputs/transport/}
 * ({@link TransportSeedsTest} checks them and what each reaches; {@code -Dfuzz.recordSeeds=true}
 * rewrites them).
 */
final class TransportSeeds {
    private TransportSeeds() {
    }

    static Map<String, byte[]> all() {
        Map<String, byte[]> seeds = new LinkedHashMap<>();
        byte[] hello = "stream bytes".getBytes(StandardCharsets.UTF_8);
        seeds.put("stream-and-ram-writes", new TransportFuzzing.Writer(0).sourceStream(hello).writeRam(0, 3).writeRam(1500, 40)
                .sourceStream(new byte[1500]).writeRam(2047, 1).toBytes());
        seeds.put("stream-and-ram-writes-pin-all", new TransportFuzzing.Writer(1).sourceStream(hello).writeRam(700, 64).toBytes());
        seeds.put("an-empty-message", new TransportFuzzing.Writer(0).sourceStream(hello).sourceRaw(new byte[0]).sourceStream(hello).toBytes());
        seeds.put("an-unknown-message-type", new TransportFuzzing.Writer(0).sourceRaw(new byte[] {99, 1, 2}).toBytes());
        seeds.put("a-registration-request-for-nothing", new TransportFuzzing.Writer(0).sourceRegister(0, 2000, 300).sourceRegister(7, 0, 1)
                .sourceRegister(0, -1, 1).toBytes());
        seeds.put("an-answer-nobody-asked-for", new TransportFuzzing.Writer(0).writeRam(10, 1).destinationRegistered(0, 500, 1, new byte[14])
                .writeRam(1000, 1).toBytes());
        seeds.put("a-goodbye-in-the-middle", new TransportFuzzing.Writer(0).sourceStream(hello).sourceRaw(new byte[] {ControlChannel.MSG_GOODBYE})
                .sourceStream(hello).toBytes());
        return seeds;
    }

    static void record(Path dir) throws java.io.IOException {
        Files.createDirectories(dir);
        for (Map.Entry<String, byte[]> e : all().entrySet()) {
            Files.write(dir.resolve(e.getKey()), e.getValue());
        }
    }
}
