package dev.kiln.isolation;

import dev.kiln.KilnException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The contents of the three /etc files kiln gives every sandbox (hostname, hosts, resolv.conf), whatever delivers
 * them: the OCI bundle bind-mounts files, kiln-init writes them in the guest. Docker's layouts: hosts names the
 * hostname on the sandbox's address (loopback without one) and the {@code --add-host} entries; resolv.conf is
 * {@code --dns}/{@code --dns-search}/{@code --dns-option} where given, else the host's without loopback nameservers.
 */
public final class EtcFiles {

    public static final String HOSTNAME = "hostname";
    public static final String HOSTS = "hosts";
    public static final String RESOLV_CONF = "resolv.conf";
    public static final List<String> NAMES = List.of(HOSTNAME, HOSTS, RESOLV_CONF);

    private static final Path HOST_RESOLV_CONF = Path.of("/etc/resolv.conf");
    /** systemd-resolved's list of the real upstream servers, used when /etc/resolv.conf names only its stub. */
    private static final Path RESOLVED_UPSTREAM = Path.of("/run/systemd/resolve/resolv.conf");

    private EtcFiles() {
    }

    public static String hostname(String hostname) {
        return EtcValues.hostname(hostname) + "\n";
    }

    /** Docker's loopback and IPv6 lines, then the hostname on 127.0.0.1 (no address of its own). */
    public static String hosts(String hostname) {
        return hosts(hostname, null, List.of());
    }

    /** Docker's lines with the hostname on {@code address} (null: loopback), then {@code NAME:ADDRESS} extras. */
    public static String hosts(String hostname, String address, List<String> extraHosts) {
        EtcValues.hostname(hostname);
        StringBuilder b = new StringBuilder()
                .append("127.0.0.1\tlocalhost\n")
                .append("::1\tlocalhost ip6-localhost ip6-loopback\n")
                .append("fe00::0\tip6-localnet\n")
                .append("ff00::0\tip6-mcastprefix\n")
                .append("ff02::1\tip6-allnodes\n")
                .append("ff02::2\tip6-allrouters\n")
                .append(extras(extraHosts));
        return b.append(address == null ? "127.0.0.1" : address).append('\t').append(hostname).append('\n').toString();
    }

    /** /etc/hosts for {@code spec}: its address on a bridge, the host's own file with {@code --network host}. */
    public static String hosts(SandboxSpec spec) {
        SandboxNetwork n = spec.network();
        if (n.mode() == SandboxNetwork.Mode.HOST) {
            String host = readOrEmpty(Path.of("/etc/hosts"));
            return host + extras(n.extraHosts());
        }
        return hosts(spec.hostname(), n.address(), n.extraHosts());
    }

    private static String extras(List<String> extraHosts) {
        StringBuilder b = new StringBuilder();
        for (String extra : extraHosts) {
            EtcValues.extraHost(extra); // checked at create too: nothing here may add a line of its own
            int colon = extra.indexOf(':');
            b.append(extra.substring(colon + 1)).append('\t').append(extra, 0, colon).append('\n');
        }
        return b.toString();
    }

    /** /etc/resolv.conf for a sandbox on {@code n}, derived from the host's {@code hostResolvConf}. */
    public static String resolvConf(SandboxNetwork n, String hostResolvConf) {
        if (n.mode() == SandboxNetwork.Mode.HOST && n.dns().isEmpty() && n.dnsSearch().isEmpty()
                && n.dnsOptions().isEmpty()) {
            return readOrEmpty(HOST_RESOLV_CONF); // the host's namespace reaches its loopback resolvers
        }
        if (n.dns().isEmpty() && n.dnsSearch().isEmpty() && n.dnsOptions().isEmpty()) {
            return resolvConf(hostResolvConf);
        }
        // each value is one token (checked at create too): none can add a line, such as a nameserver of its own
        n.dns().forEach(EtcValues::nameserver);
        n.dnsSearch().forEach(EtcValues::searchDomain);
        n.dnsOptions().forEach(EtcValues::dnsOption);
        List<String> host = hostResolvConf.lines().map(String::strip).toList();
        List<String> out = new ArrayList<>();
        List<String> search = n.dnsSearch().isEmpty() ? field(host, "search")
                : n.dnsSearch().equals(List.of(".")) ? List.of() : n.dnsSearch(); // ".": none, as Docker
        if (!search.isEmpty()) out.add("search " + String.join(" ", search));
        if (n.dns().isEmpty()) {
            resolvConf(hostResolvConf).lines().filter(l -> l.strip().startsWith("nameserver")).forEach(out::add);
        } else {
            n.dns().forEach(d -> out.add("nameserver " + d));
        }
        List<String> options = n.dnsOptions().isEmpty() ? field(host, "options") : n.dnsOptions();
        if (!options.isEmpty()) out.add("options " + String.join(" ", options));
        return String.join("\n", out) + "\n";
    }

    private static List<String> field(List<String> lines, String key) {
        return lines.stream().filter(l -> l.startsWith(key + " ") || l.startsWith(key + "\t"))
                .flatMap(l -> java.util.Arrays.stream(l.split("\\s+")).skip(1)).toList();
    }

    /**
     * The host's resolv.conf without loopback nameservers (127.0.0.0/8, ::1: inside the sandbox they would be the
     * sandbox's own loopback, where nothing listens). Unlike Docker, kiln does not fall back to Google's public
     * resolvers when none remain: it writes a comment saying so and leaves DNS unconfigured.
     */
    public static String resolvConf(String hostResolvConf) {
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

    /** The host resolv.conf to derive the sandbox's from, following systemd-resolved's stub to its upstream list. */
    public static String hostResolvConf() {
        String main = readOrEmpty(HOST_RESOLV_CONF);
        if (!hasUsableNameserver(main)) {
            String upstream = readOrEmpty(RESOLVED_UPSTREAM);
            if (hasUsableNameserver(upstream)) {
                return upstream;
            }
        }
        return main;
    }

    /** Whether {@code resolv.conf} (the host's) names at least one nameserver a sandbox could reach. */
    public static boolean hasUsableNameserver(String resolvConf) {
        return resolvConf.lines().map(String::strip).filter(l -> l.startsWith("nameserver"))
                .map(l -> l.split("\\s+")).anyMatch(f -> f.length >= 2 && !isLoopback(f[1]));
    }

    public static boolean isLoopback(String address) {
        String a = address.toLowerCase();
        int zone = a.indexOf('%');
        if (zone >= 0) {
            a = a.substring(0, zone);
        }
        return a.startsWith("127.") || a.equals("::1") || a.equals("0:0:0:0:0:0:0:1");
    }

    private static String readOrEmpty(Path file) {
        try {
            return Files.readString(file);
        } catch (NoSuchFileException e) {
            return "";
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot read " + file + ": " + e.getMessage(), e);
        }
    }
}
