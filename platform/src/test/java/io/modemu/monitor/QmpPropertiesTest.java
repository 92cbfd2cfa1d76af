package io.modemu.monitor;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.stream.Collectors;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;

/**
 * The QMP fuzz targets' properties ({@link QmpFuzzing}) over generated inputs, a bounded number of
 * tries each ({@code -Dfuzz.tries=N}, default in the POM): sessions of generated QMP commands (real
 * command names with arguments of every JSON type, ids of any shape, stray members, deep nesting,
 * huge numbers, escapes and non-ASCII text), then damaged (cut, bytes inserted or dropped); and
 * random bytes.
 */
class QmpPropertiesTest {
    private static final List<String> COMMANDS = List.of("qmp_capabilities", "query-status", "query-name", "query-version", "query-commands",
            "query-block", "query-blockstats", "query-iothreads", "query-plugins", "query-guest", "query-migrate", "query-migrate-parameters",
            "query-migrate-capabilities", "migrate-set-parameters", "migrate-set-capabilities", "migrate", "migrate-incoming", "migrate_cancel",
            "stop", "cont", "system_reset", "quit", "no-such-command", "");
    private static final List<String> KEYS = List.of("execute", "arguments", "id", "exec-oob", "uri", "downtime-limit", "max-bandwidth",
            "x-io-timeout", "capabilities", "capability", "state", "enable", "query-nodes", "blk", "detach", "bogus");

    @Property
    void aSessionOfDamagedCommandsGetsOneWellFormedReplyPerInput(@ForAll("sessions") byte[] input) {
        QmpFuzzing.session(input);
    }

    @Property
    void randomBytesNeverHarmTheFramerOrTheServer(@ForAll("randomInputs") byte[] input) {
        QmpFuzzing.framer(input);
        QmpFuzzing.session(input);
    }

    @Provide
    Arbitrary<byte[]> randomInputs() {
        return Arbitraries.bytes().array(byte[].class).ofMaxSize(300);
    }

    @Provide
    Arbitrary<byte[]> sessions() {
        Arbitrary<String> command = Combinators.combine(Arbitraries.of(COMMANDS), arguments(), value(2), Arbitraries.integers().between(0, 5))
                .as((name, args, id, shape) -> switch (shape) {
                    case 0 -> "{\"execute\":" + str(name) + "}";
                    case 1 -> "{\"execute\":" + str(name) + ",\"arguments\":" + args + "}";
                    case 2 -> "{\"execute\":" + str(name) + ",\"arguments\":" + args + ",\"id\":" + id + "}";
                    case 3 -> "{\"id\":" + id + ",\"execute\":" + id + "}";
                    case 4 -> "{\"execute\":" + str(name) + ",\"arguments\":" + id + "," + str(KEYS.get(Math.abs(name.hashCode()) % KEYS.size())) + ":1}";
                    default -> id;
                });
        Arbitrary<String> session = command.list().ofMaxSize(6).map(l -> String.join(" \n", l));
        return Combinators.combine(Arbitraries.integers().between(0, 3), session, damage().list().ofMaxSize(3)).as((mode, text, damages) -> {
            byte[] b = text.getBytes(StandardCharsets.UTF_8);
            for (int[] d : damages) {
                b = apply(b, d);
            }
            byte[] out = new byte[b.length + 1];
            out[0] = (byte) (int) mode;
            System.arraycopy(b, 0, out, 1, b.length);
            return out;
        });
    }

    /** {kind, position per mille, byte}: cut, insert a byte, drop a byte, or overwrite one. */
    private static Arbitrary<int[]> damage() {
        return Combinators.combine(Arbitraries.integers().between(0, 3), Arbitraries.integers().between(0, 1000),
                Arbitraries.of((int) '{', (int) '}', (int) '[', (int) ']', (int) '"', (int) '\\', (int) ',', (int) ':', (int) '\n', 0, 0xff, 0xc3, (int) 'x'))
                .as((k, at, v) -> new int[] {k, at, v});
    }

    private static byte[] apply(byte[] b, int[] d) {
        int at = (int) ((long) b.length * d[1] / 1000);
        return switch (d[0]) {
            case 0 -> java.util.Arrays.copyOf(b, at);
            case 1 -> {
                byte[] o = new byte[b.length + 1];
                System.arraycopy(b, 0, o, 0, at);
                o[at] = (byte) d[2];
                System.arraycopy(b, at, o, at + 1, b.length - at);
                yield o;
            }
            case 2 -> {
                if (at >= b.length) {
                    yield b;
                }
                byte[] o = new byte[b.length - 1];
                System.arraycopy(b, 0, o, 0, at);
                System.arraycopy(b, at + 1, o, at, b.length - at - 1);
                yield o;
            }
            default -> {
                if (at < b.length) {
                    b[at] = (byte) d[2];
                }
                yield b;
            }
        };
    }

    private static String str(String s) {
        return QmpFuzzing.JSON.getNodeFactory().textNode(s).toString();
    }

    private static Arbitrary<String> arguments() {
        return Combinators.combine(Arbitraries.of(KEYS), value(3)).as((k, v) -> str(k) + ":" + v).list().ofMaxSize(4)
                .map(l -> l.stream().collect(Collectors.joining(",", "{", "}")));
    }

    /** A JSON value up to {@code depth} levels deep, with edge cases of every type. */
    private static Arbitrary<String> value(int depth) {
        Arbitrary<String> scalar = Arbitraries.frequencyOf(
                Tuple.of(3, Arbitraries.of("0", "1", "-1", "true", "false", "null", "1.5", "1e400", "-0", "9223372036854775807", "9223372036854775808",
                        "18446744073709551617", "123456789012345678901234567890", "\"\"", "\"tcp:127.0.0.1:1\"", "\"exec:/bin/true\"", "\"auto-converge\"",
                        "\"\\u0000\"", "\"\\ud800\"", "\"é€😀\"", "\"}{\\\"\"")),
                Tuple.of(2, Arbitraries.strings().ofMaxLength(12).map(QmpPropertiesTest::str)),
                Tuple.of(1, Arbitraries.longs().map(String::valueOf)),
                Tuple.of(1, Arbitraries.integers().between(1, 1100).map(n -> "[".repeat(n) + "]".repeat(n))));
        if (depth == 0) {
            return scalar;
        }
        Arbitrary<String> list = value(depth - 1).list().ofMaxSize(3).map(l -> "[" + String.join(",", l) + "]");
        Arbitrary<String> object = Combinators.combine(Arbitraries.of(KEYS), value(depth - 1)).as((k, v) -> str(k) + ":" + v).list().ofMaxSize(3)
                .map(l -> "{" + String.join(",", l) + "}");
        return Arbitraries.frequencyOf(Tuple.of(4, scalar), Tuple.of(1, list), Tuple.of(1, object));
    }
}
