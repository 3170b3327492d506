package dev.kiln.isolation.oci;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The three /etc files kiln writes into a sandbox's directory and bind-mounts over the image's: hostname, hosts and
 * resolv.conf. A sandbox on the kiln network gets its address in hosts (as Docker writes it) when it starts; without
 * one the hostname resolves to loopback.
 */
public final class EtcFiles {

    static final String HOSTNAME = "hostname";
    static final String HOSTS = "hosts";
    static final String RESOLV_CONF = "resolv.conf";
    static final List<String> NAMES = List.of(HOSTNAME, HOSTS, RESOLV_CONF);

    private EtcFiles() {
    }

    static String hostname(String hostname) {
        return hostname + "\n";
    }

    /** Docker's loopback and IPv6 lines, then the hostname on 127.0.0.1 (no address of its own yet). */
    static String hosts(String hostname) {
        return "127.0.0.1\tlocalhost\n"
                + "::1\tlocalhost ip6-localhost ip6-loopback\n"
                + "fe00::0\tip6-localnet\n"
                + "ff00::0\tip6-mcastprefix\n"
                + "ff02::1\tip6-allnodes\n"
                + "ff02::2\tip6-allrouters\n"
                + "127.0.0.1\t" + hostname + "\n";
    }

    /** Docker's lines with the hostname on the sandbox's own {@code address} instead of loopback. */
    static String hosts(String hostname, String address) {
        String loopback = hosts(hostname);
        return address == null ? loopback
                : loopback.substring(0, loopback.lastIndexOf("127.0.0.1\t")) + address + "\t" + hostname + "\n";
    }

    /**
     * Rewrites {@code DIR/hosts} of a sandbox's bundle for its current address (null: loopback), before the runtime
     * bind-mounts it at start. Atomic: a reader sees the old or the new file.
     */
    public static void writeHosts(Path dir, String hostname, String address) {
        Path target = dir.resolve(HOSTS);
        Path tmp = dir.resolve("." + HOSTS + ".tmp");
        try {
            Files.writeString(tmp, hosts(hostname, address), StandardCharsets.UTF_8);
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("cannot write " + target, e);
        }
    }

    /**
     * The host's resolv.conf without loopback nameservers (127.0.0.0/8, ::1: inside the sandbox they would be the
     * sandbox's own loopback, where nothing listens). Unlike Docker, kiln does not fall back to Google's public
     * resolvers when none remain: it writes a comment saying so and leaves DNS unconfigured.
     */
    static String resolvConf(String hostResolvConf) {
        List<String> out = new ArrayList<>();
        boolean anyNameserver = false;
        for (String line : hostResolvConf.split("\n", -1)) {
            String trimmed = line.strip();
            if (trimmed.startsWith("nameserver")) {
                String[] fields = trimmed.split("\\s+");
                if (fields.length < 2 || isLoopback(fields[1])) {
                    continue;
                }
                anyNameserver = true;
            }
            out.add(line);
        }
        while (!out.isEmpty() && out.getLast().isBlank()) {
            out.removeLast();
        }
        if (!anyNameserver) {
            out.add("# kiln: the host's resolv.conf names no nameserver reachable from a sandbox (only loopback");
            out.add("# addresses or none), so DNS is not configured here.");
        }
        return String.join("\n", out) + "\n";
    }

    /** Whether {@code resolv.conf} (the host's) names at least one nameserver a sandbox could reach. */
    static boolean hasUsableNameserver(String resolvConf) {
        return resolvConf.lines().map(String::strip).filter(l -> l.startsWith("nameserver"))
                .map(l -> l.split("\\s+")).anyMatch(f -> f.length >= 2 && !isLoopback(f[1]));
    }

    static boolean isLoopback(String address) {
        String a = address.toLowerCase();
        int zone = a.indexOf('%');
        if (zone >= 0) {
            a = a.substring(0, zone);
        }
        return a.startsWith("127.") || a.equals("::1") || a.equals("0:0:0:0:0:0:0:1");
    }
}
