package io.modemu.monitor;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * Coverage-guided fuzzing (Jazzer) of the QMP monitor's input: the framer alone, and a real server
 * over a real socket. {@code ./mvnw verify} replays the inputs under {@code QmpFuzzTestInputs/<method>/}
 * (well-formed and malformed sessions, and every input that ever found a bug); {@code JAZZER_FUZZ=1}
 * fuzzes (docs/fuzzing.md). The properties are {@link QmpFuzzing}'s.
 */
class QmpFuzzTest {
    /** A fuzz input: what a client sends, as bytes. */
    @FuzzTest(maxDuration = "5m")
    void framer(byte[] input) {
        QmpFuzzing.framer(input);
    }

    /** A fuzz input: a mode byte (bit 0: negotiate first; bit 1: send in 7-byte pieces), then what the client sends. */
    @FuzzTest(maxDuration = "5m")
    void session(byte[] input) {
        QmpFuzzing.session(input);
    }

    @Test
    void aHugeUnterminatedInputIsRefusedWithAnErrorAndTheConnectionGoesOn() throws Exception {
        QmpServer s = QmpFuzzing.server();
        String[] hp = s.address().substring(4).split(":");
        try (Socket sock = new Socket(hp[0], Integer.parseInt(hp[1]))) {
            sock.setSoTimeout(60_000);
            BufferedReader in = new BufferedReader(new InputStreamReader(sock.getInputStream(), StandardCharsets.UTF_8));
            OutputStream out = sock.getOutputStream();
            assertThat(in.readLine()).contains("QMP");
            out.write("{\"execute\":\"qmp_capabilities\"}{\"execute\":\"query-name\",\"id\":\"".getBytes(StandardCharsets.UTF_8));
            byte[] chunk = "x".repeat(1 << 20).getBytes(StandardCharsets.UTF_8);
            for (int i = 0; i < 17; i++) {
                out.write(chunk);
            }
            out.write("\"}\n{\"execute\":\"query-name\",\"id\":2}".getBytes(StandardCharsets.UTF_8));
            out.flush();
            assertThat(QmpFuzzing.JSON.readTree(in.readLine()).has("return")).isTrue();
            JsonNode refused = QmpFuzzing.JSON.readTree(in.readLine());
            assertThat(refused.path("error").path("class").asText()).isEqualTo("GenericError");
            assertThat(refused.path("error").path("desc").asText()).isEqualTo("JSON parse error, input larger than " + JsonFramer.MAX_LENGTH + " bytes");
            JsonNode next = QmpFuzzing.JSON.readTree(in.readLine());
            assertThat(next.path("return").path("name").asText()).isEqualTo("vm1");
            assertThat(next.path("id").asInt()).isEqualTo(2);
        }
    }
}
