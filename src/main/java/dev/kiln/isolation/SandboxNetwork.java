package dev.kiln.isolation;

import dev.kiln.network.PortMapping;

import java.nio.file.Path;
import java.util.List;

/**
 * How a sandbox is networked, as the engine prepared it. {@code NONE}: a namespace of its own with loopback only
 * (the runtime or VMM makes it). {@code BRIDGE}: the namespace {@code netns} (made by the engine) is on a kiln bridge
 * with {@code address/prefixLength}, {@code gateway} and {@code mac} on {@code eth0}; these are null until the engine
 * attached the sandbox at start. {@code HOST}: the host's own namespace ({@code container} only). {@code USER}: a
 * user-mode network inside the VMM ({@code vm} only; QEMU's {@code -netdev user}), whose address, gateway and MAC the
 * engine also gives once attached, with the published {@code ports} the VMM forwards.
 *
 * @param dns        nameservers for resolv.conf ({@code --dns}, or the network's embedded resolver); empty: the host's
 * @param extraHosts {@code --add-host} lines as {@code NAME:ADDRESS}, appended to /etc/hosts
 */
public record SandboxNetwork(Mode mode, Path netns, String address, int prefixLength, String gateway, String mac,
                             int mtu, List<String> dns, List<String> dnsSearch, List<String> dnsOptions,
                             List<String> extraHosts, List<PortMapping> ports) {

    public enum Mode { NONE, BRIDGE, HOST, USER }

    public static final int DEFAULT_MTU = 1500;

    public SandboxNetwork {
        dns = dns == null ? List.of() : List.copyOf(dns);
        dnsSearch = dnsSearch == null ? List.of() : List.copyOf(dnsSearch);
        dnsOptions = dnsOptions == null ? List.of() : List.copyOf(dnsOptions);
        extraHosts = extraHosts == null ? List.of() : List.copyOf(extraHosts);
        ports = ports == null ? List.of() : List.copyOf(ports);
    }

    /** A network with no published ports of its own to forward (all but the user network's). */
    public SandboxNetwork(Mode mode, Path netns, String address, int prefixLength, String gateway, String mac, int mtu,
                          List<String> dns, List<String> dnsSearch, List<String> dnsOptions, List<String> extraHosts) {
        this(mode, netns, address, prefixLength, gateway, mac, mtu, dns, dnsSearch, dnsOptions, extraHosts, null);
    }

    /** Loopback only, nothing else asked for. */
    public static SandboxNetwork none() {
        return new SandboxNetwork(Mode.NONE, null, null, 0, null, null, DEFAULT_MTU, null, null, null, null);
    }

    /** The same network with the address the engine got at attach time. */
    public SandboxNetwork attached(String address, int prefixLength, String gateway, String mac) {
        return attached(address, prefixLength, gateway, mac, ports);
    }

    /** The same network with the address the engine got at attach time and the ports it published. */
    public SandboxNetwork attached(String address, int prefixLength, String gateway, String mac,
                                   List<PortMapping> published) {
        return new SandboxNetwork(mode, netns, address, prefixLength, gateway, mac, mtu, dns, dnsSearch, dnsOptions,
                extraHosts, published);
    }
}
