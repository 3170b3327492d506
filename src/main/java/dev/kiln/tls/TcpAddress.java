package dev.kiln.tls;

import dev.kiln.KilnException;

import java.net.URI;
import java.net.URISyntaxException;

/**
 * A {@code tcp://HOST:PORT} address of kilnd, as {@code kiln daemon --listen} and {@code kiln -H} take it (Docker's
 * spelling; IPv6 hosts in brackets). The port defaults to 2376, Docker's port for TLS.
 */
public record TcpAddress(String host, int port) {

    public static final int DEFAULT_PORT = 2376;

    public static boolean is(String address) {
        return address.startsWith("tcp://");
    }

    public static TcpAddress parse(String address) {
        String what = "\"" + address + "\" is not a tcp://HOST:PORT address";
        if (!is(address)) {
            throw KilnException.invalid(what);
        }
        try {
            URI uri = new URI(address);
            String host = uri.getHost();
            if (host == null || (uri.getPath() != null && !uri.getPath().isEmpty() && !uri.getPath().equals("/"))
                    || uri.getQuery() != null || uri.getUserInfo() != null) {
                throw KilnException.invalid(what);
            }
            if (host.startsWith("[") && host.endsWith("]")) {
                host = host.substring(1, host.length() - 1);
            }
            int port = uri.getPort() < 0 ? DEFAULT_PORT : uri.getPort();
            if (port > 65535) {
                throw KilnException.invalid(what + " (port " + port + " is out of range)");
            }
            return new TcpAddress(host, port);
        } catch (URISyntaxException e) {
            throw KilnException.invalid(what);
        }
    }

    @Override
    public String toString() {
        return "tcp://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
}
