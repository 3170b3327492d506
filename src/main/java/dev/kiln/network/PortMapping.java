package dev.kiln.network;

import dev.kiln.KilnException;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One published port, Docker's {@code -p [IP:][HOSTPORT:]PORT[/tcp|udp]}. A host port of 0 means "any free port",
 * chosen when the sandbox starts; an empty host IP means every host address (0.0.0.0).
 */
public record PortMapping(String hostIp, int hostPort, int containerPort, String protocol) {

    private static final Pattern SPEC = Pattern.compile(
            "^(?:(?:(\\[[0-9a-fA-F:.]+\\]|[0-9.]*):)?(\\d*):)?(\\d+)(?:/(tcp|udp))?$");

    public PortMapping {
        hostIp = hostIp == null ? "" : hostIp;
        protocol = protocol == null ? "tcp" : protocol;
    }

    /** Parses one {@code -p} value; a bad one is refused with a line saying what is expected. */
    public static PortMapping parse(String spec) {
        Matcher m = SPEC.matcher(spec == null ? "" : spec.strip());
        if (!m.matches()) {
            throw bad(spec, "expected [IP:][HOSTPORT:]PORT[/tcp|udp], e.g. 8080:80 or 127.0.0.1:8080:80/tcp");
        }
        String ip = m.group(1) == null ? "" : m.group(1);
        if (ip.startsWith("[")) {
            throw bad(spec, "IPv6 host addresses are not supported yet");
        }
        if (!ip.isEmpty() && !isIpv4(ip)) {
            throw bad(spec, "\"" + ip + "\" is not an IPv4 address");
        }
        int hostPort = m.group(2) == null || m.group(2).isEmpty() ? 0 : port(spec, m.group(2));
        int containerPort = port(spec, m.group(3));
        if (containerPort == 0) {
            throw bad(spec, "the sandbox port must be 1-65535");
        }
        return new PortMapping(ip.equals("0.0.0.0") ? "" : ip, hostPort, containerPort, m.group(4));
    }

    /** The address the port is published on, as Docker shows it. */
    public String hostAddress() {
        return hostIp.isEmpty() ? "0.0.0.0" : hostIp;
    }

    /** Docker's key for the sandbox side, e.g. {@code 80/tcp}. */
    public String key() {
        return containerPort + "/" + protocol;
    }

    public PortMapping withHostPort(int port) {
        return new PortMapping(hostIp, port, containerPort, protocol);
    }

    /** Whether both claim the same host port (same protocol, overlapping addresses). */
    public boolean clashesWith(PortMapping other) {
        return hostPort == other.hostPort && protocol.equals(other.protocol)
                && (hostIp.isEmpty() || other.hostIp.isEmpty() || hostIp.equals(other.hostIp));
    }

    @Override
    public String toString() {
        return key() + " -> " + hostAddress() + ":" + hostPort;
    }

    private static int port(String spec, String digits) {
        try {
            int p = Integer.parseInt(digits);
            if (p < 0 || p > 65535) {
                throw new NumberFormatException();
            }
            return p;
        } catch (NumberFormatException e) {
            throw bad(spec, "ports must be 1-65535");
        }
    }

    static boolean isIpv4(String ip) {
        String[] parts = ip.split("\\.", -1);
        if (parts.length != 4) {
            return false;
        }
        for (String p : parts) {
            if (p.isEmpty() || p.length() > 3 || !p.chars().allMatch(Character::isDigit) || Integer.parseInt(p) > 255) {
                return false;
            }
        }
        return true;
    }

    private static KilnException bad(String spec, String why) {
        return KilnException.invalid("invalid -p \"" + spec + "\": " + why);
    }
}
