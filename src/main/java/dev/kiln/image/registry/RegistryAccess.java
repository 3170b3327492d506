package dev.kiln.image.registry;

import java.util.Objects;
import java.util.Set;

/**
 * How to talk to one registry host: over plain HTTP or HTTPS, and with which credentials.
 *
 * @param plainHttp   true for registries without TLS ({@code --insecure-registry HOST}, and loopback hosts, as Docker)
 * @param credentials where to find a user name and password for the host
 */
public record RegistryAccess(boolean plainHttp, Credentials credentials) {

    public RegistryAccess {
        Objects.requireNonNull(credentials, "credentials");
    }

    /** Docker's rule: loopback registries and those the user named insecure speak plain HTTP, all others HTTPS. */
    public static RegistryAccess forHost(String host, Set<String> insecureRegistries, Credentials credentials) {
        return new RegistryAccess(isLoopback(host) || insecureRegistries.contains(host), credentials);
    }

    /**
     * True for {@code localhost}, {@code 127.0.0.0/8} and {@code ::1}, with or without a port. Only the spelling is
     * looked at, never DNS: a name that merely resolves to a loopback address must not downgrade to plain HTTP.
     */
    public static boolean isLoopback(String host) {
        String name = stripPort(host);
        if (name.equalsIgnoreCase("localhost")) {
            return true;
        }
        if (name.equals("::1") || name.equals("0:0:0:0:0:0:0:1")) {
            return true;
        }
        String[] octets = name.split("\\.", -1);
        if (octets.length != 4 || !octets[0].equals("127")) {
            return false;
        }
        for (String o : octets) {
            if (!o.matches("[0-9]{1,3}") || Integer.parseInt(o) > 255) {
                return false;
            }
        }
        return true;
    }

    /** {@code host:port} → {@code host}; {@code [::1]:5000} → {@code ::1}; a bare IPv6 address stays as it is. */
    static String stripPort(String host) {
        if (host.startsWith("[")) {
            int close = host.indexOf(']');
            return close > 0 ? host.substring(1, close) : host;
        }
        int colon = host.indexOf(':');
        if (colon >= 0 && colon == host.lastIndexOf(':')) {
            return host.substring(0, colon);
        }
        return host;
    }
}
