package io.modemu.migration.rdmasim;

import io.modemu.migration.rdmasim.verbs.FabricSettings;
import io.modemu.options.ConfigurationException;
import io.modemu.options.Sizes;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;

/**
 * An {@code rdma-sim:} address: {@code HOST:PORT} followed by options, each {@code ,name=value}:
 *
 * <ul>
 *   <li>{@code pin-all=on|off} (source; default off): the destination registers all of guest RAM up
 *       front instead of 1 MiB chunks on demand (QEMU's {@code rdma-pin-all}).</li>
 *   <li>{@code latency=DURATION} (for example {@code 2us}, {@code 1ms}; default 0): one-way latency of
 *       this end's simulated link.</li>
 *   <li>{@code bandwidth=SIZE} (bytes per second, for example {@code 12.5G}; default unlimited): this
 *       end's simulated link bandwidth.</li>
 *   <li>{@code shm=DIR} (default {@code /dev/shm}): where the fabric's shared files live; both ends
 *       must use the same directory.</li>
 *   <li>{@code copy=map|pwrite} (source; default {@code map}): how this end's simulated adapter places
 *       RDMA WRITE data in the peer's memory: copied through a mapping of the peer's file whose pages a
 *       prefetcher maps ahead of the writes, or with positional file writes.</li>
 * </ul>
 *
 * @param host    host name or address (IPv6 in brackets)
 * @param port    TCP port of the connection manager (0 when listening picks one)
 * @param pinAll  register all of guest RAM up front
 * @param fabric  the simulated device's settings
 */
public record RdmaSimAddress(String host, int port, boolean pinAll, FabricSettings fabric) {

    /**
     * Parses {@code text} (the URI without {@code rdma-sim:}).
     *
     * @throws ConfigurationException naming the part that is wrong
     */
    public static RdmaSimAddress parse(String text) {
        String[] parts = text.split(",");
        String hostPort = parts[0].trim();
        int colon = hostPort.lastIndexOf(':');
        if (colon <= 0 || colon == hostPort.length() - 1) {
            throw new ConfigurationException("rdma-sim: '" + text + "' is not HOST:PORT[,option=value...]");
        }
        String host = hostPort.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = Integer.parseInt(hostPort.substring(colon + 1));
        } catch (NumberFormatException e) {
            port = -1;
        }
        if (port < 0 || port > 65535) {
            throw new ConfigurationException("rdma-sim: port '" + hostPort.substring(colon + 1) + "' in '" + text + "' is not a number in 0..65535");
        }
        boolean pinAll = false;
        FabricSettings fabric = FabricSettings.defaults();
        for (int i = 1; i < parts.length; i++) {
            String opt = parts[i].trim();
            int eq = opt.indexOf('=');
            if (eq <= 0) {
                throw new ConfigurationException("rdma-sim: option '" + opt + "' in '" + text + "' is not name=value");
            }
            String name = opt.substring(0, eq);
            String value = opt.substring(eq + 1);
            switch (name) {
                case "pin-all" -> pinAll = onOff(name, value);
                case "latency" -> fabric = fabric.withLatency(duration(value));
                case "bandwidth" -> fabric = fabric.withBandwidth(Sizes.parse(value, 1, "rdma-sim: bandwidth"));
                case "shm" -> fabric = fabric.withShmDirectory(Path.of(value));
                case "copy" -> fabric = fabric.withMappedWrites(switch (value) {
                    case "map" -> true;
                    case "pwrite" -> false;
                    default -> throw new ConfigurationException("rdma-sim: copy=" + value + ": expected map or pwrite");
                });
                default -> throw new ConfigurationException("rdma-sim: unknown option '" + name + "' (known: pin-all, latency, bandwidth, shm, copy)");
            }
        }
        return new RdmaSimAddress(host, port, pinAll, fabric);
    }

    private static boolean onOff(String name, String value) {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "on", "true", "yes" -> true;
            case "off", "false", "no" -> false;
            default -> throw new ConfigurationException("rdma-sim: " + name + "=" + value + ": expected on or off");
        };
    }

    /** {@code 0}, {@code 500ns}, {@code 2us}, {@code 1.5ms}, {@code 1s}. */
    static Duration duration(String value) {
        String v = value.trim().toLowerCase(Locale.ROOT);
        long unit;
        String number;
        if (v.endsWith("ns")) {
            unit = 1;
            number = v.substring(0, v.length() - 2);
        } else if (v.endsWith("us")) {
            unit = 1_000;
            number = v.substring(0, v.length() - 2);
        } else if (v.endsWith("ms")) {
            unit = 1_000_000;
            number = v.substring(0, v.length() - 2);
        } else if (v.endsWith("s")) {
            unit = 1_000_000_000;
            number = v.substring(0, v.length() - 1);
        } else if (v.equals("0")) {
            return Duration.ZERO;
        } else {
            throw new ConfigurationException("rdma-sim: latency '" + value + "' needs a unit: ns, us, ms or s");
        }
        try {
            double d = Double.parseDouble(number);
            if (d < 0 || !Double.isFinite(d) || d * unit > 60e9) {
                throw new NumberFormatException();
            }
            return Duration.ofNanos(Math.round(d * unit));
        } catch (NumberFormatException e) {
            throw new ConfigurationException("rdma-sim: latency '" + value + "' is not a duration between 0 and 60 s");
        }
    }

    public InetSocketAddress socketAddress() {
        return new InetSocketAddress(host, port);
    }

    /** {@code HOST:PORT} with the given port (for the address a listener reports). */
    public String hostPort(int realPort) {
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + realPort;
    }
}
