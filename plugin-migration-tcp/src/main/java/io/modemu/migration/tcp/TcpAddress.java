package io.modemu.migration.tcp;

import io.modemu.options.ConfigurationException;
import java.net.InetSocketAddress;

/**
 * The address part of a {@code tcp:HOST:PORT} URI: {@code HOST} is a name, an IPv4 address or an
 * IPv6 address in brackets ({@code [::1]:4444}); an empty host means every interface when listening
 * ({@code tcp::4444}, as in QEMU).
 */
record TcpAddress(String host, int port) {
    static TcpAddress parse(String address, boolean listening) {
        String where = "migration URI 'tcp:" + address + "'";
        int colon = address.lastIndexOf(':');
        if (colon < 0) {
            throw new ConfigurationException(where + ": expected tcp:HOST:PORT");
        }
        String host = address.substring(0, colon);
        String portText = address.substring(colon + 1);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        } else if (host.contains(":")) {
            throw new ConfigurationException(where + ": put an IPv6 address in brackets, for example tcp:[::1]:4444");
        }
        int port;
        try {
            port = Integer.parseInt(portText);
        } catch (NumberFormatException e) {
            throw new ConfigurationException(where + ": port '" + portText + "' is not a number");
        }
        if (port < 0 || port > 65535 || (port == 0 && !listening)) {
            throw new ConfigurationException(where + ": port " + port + " is outside " + (listening ? 0 : 1) + "..65535");
        }
        if (host.isEmpty() && !listening) {
            throw new ConfigurationException(where + ": a destination host is required");
        }
        return new TcpAddress(host, port);
    }

    InetSocketAddress resolve() {
        return host.isEmpty() ? new InetSocketAddress(port) : new InetSocketAddress(host, port);
    }

    @Override
    public String toString() {
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
}
