package dev.kiln.network;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;

/**
 * A sandbox's place on the kiln network, as kilnd records it in the sandbox's directory from just before CNI ADD
 * until CNI DEL: its namespace, address and published ports, and the CNI result (the DEL and CHECK prevResult).
 * {@code result} is null while ADD has not completed; DEL is still run then, as the CNI spec allows. {@code ifname}:
 * the interface in the namespace ({@code eth0} for the network the sandbox was created on, which made the namespace;
 * {@code eth1}... for networks it joined with {@code network connect}).
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record Attachment(String network, String sandboxId, String netns, String ipAddress, int prefixLength, String gateway,
                         String macAddress, List<PortMapping> ports, JsonNode result, String ifname) {

    /** The record's name in the sandbox's directory. */
    public static final String FILE = "network.json";

    public Attachment {
        network = network == null ? KilnNetwork.NAME : network; // records written before networks had names
        ports = ports == null ? List.of() : List.copyOf(ports);
        ifname = ifname == null ? KilnNetwork.IFNAME : ifname; // records written before a sandbox had two
    }

    public Attachment(String network, String sandboxId, String netns, String ipAddress, int prefixLength,
                      String gateway, String macAddress, List<PortMapping> ports, JsonNode result) {
        this(network, sandboxId, netns, ipAddress, prefixLength, gateway, macAddress, ports, result, null);
    }

    static Attachment pending(String network, String sandboxId, String netns, List<PortMapping> ports,
                              String ifname) {
        return new Attachment(network, sandboxId, netns, null, 0, null, null, ports, null, ifname);
    }

    /**
     * The traffic counters of the sandbox's interface as Docker's stats show them ({@code rx_bytes}, {@code
     * rx_packets}, {@code rx_errors}, {@code rx_dropped}, {@code tx_...}), read without entering the namespace: from
     * the host end of its veth (named in the CNI result), whose receive is the sandbox's transmit. Empty before ADD
     * completed or once the veth is gone.
     */
    public java.util.Optional<java.util.Map<String, Long>> counters() {
        if (result == null) {
            return java.util.Optional.empty();
        }
        String bridge = result.path("interfaces").path(0).path("name").asText("");
        for (JsonNode i : result.path("interfaces")) {
            String name = i.path("name").asText("");
            if (i.has("sandbox") || name.isEmpty() || name.equals(bridge) || name.contains("/")) {
                continue;
            }
            java.nio.file.Path stats = java.nio.file.Path.of("/sys/class/net", name, "statistics");
            try {
                java.util.Map<String, Long> out = new java.util.LinkedHashMap<>();
                for (String[] pair : new String[][]{{"rx", "tx"}, {"tx", "rx"}}) {
                    for (String what : List.of("bytes", "packets", "errors", "dropped")) {
                        out.put(pair[0] + "_" + what, Long.parseLong(java.nio.file.Files.readString(
                                stats.resolve(pair[1] + "_" + what)).strip()));
                    }
                }
                return java.util.Optional.of(out);
            } catch (java.io.IOException | NumberFormatException e) {
                return java.util.Optional.empty();
            }
        }
        return java.util.Optional.empty();
    }

    /** Whether this is the sandbox's first interface, whose attachment made (and owns) its namespace. */
    public boolean first() {
        return ifname.equals(KilnNetwork.IFNAME);
    }
}
