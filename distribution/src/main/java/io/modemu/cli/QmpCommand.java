package io.modemu.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.modemu.monitor.QmpClient;
import io.modemu.monitor.QmpError;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code modemu qmp SOCKET COMMAND [key=value...]}: one QMP command, its reply printed as JSON. */
@Command(name = "qmp", description = {"Run one QMP command against a running VM and print its reply.",
        "Values are JSON when they parse as JSON (numbers, true, false, objects), strings otherwise.",
        "Example: modemu qmp /tmp/vm.sock migrate-set-parameters downtime-limit=100"})
public final class QmpCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "SOCKET", description = "unix socket path, or tcp:HOST:PORT")
    String socket;

    @Parameters(index = "1", paramLabel = "COMMAND")
    String command;

    @Parameters(index = "2..*", paramLabel = "key=value")
    List<String> arguments = new ArrayList<>();

    static Map<String, Object> parseArguments(List<String> kvs, CommandLine cl) {
        Map<String, Object> args = new LinkedHashMap<>();
        for (String kv : kvs) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new CommandLine.ParameterException(cl, "argument '" + kv + "' is not key=value");
            }
            String v = kv.substring(eq + 1);
            Object value = v;
            if (!v.isEmpty() && (Character.isDigit(v.charAt(0)) || v.charAt(0) == '-' || v.charAt(0) == '{' || v.charAt(0) == '[' || v.equals("true") || v.equals("false") || v.equals("null"))) {
                try {
                    value = JSON.readValue(v, Object.class);
                } catch (IOException e) {
                    value = v;
                }
            }
            args.put(kv.substring(0, eq), value);
        }
        return args;
    }

    @Override
    public Integer call() {
        Map<String, Object> args = parseArguments(arguments, spec.commandLine());
        try (QmpClient c = QmpClient.open(socket)) {
            JsonNode ret = c.execute(command, args);
            spec.commandLine().getOut().println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(ret));
            return 0;
        } catch (QmpError e) {
            spec.commandLine().getErr().println("modemu: " + e.errorClass() + ": " + e.desc());
            return 1;
        } catch (IOException e) {
            spec.commandLine().getErr().println("modemu: " + e.getMessage());
            return 1;
        }
    }
}
