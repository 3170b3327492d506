package dev.kiln.network;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;

/**
 * A sandbox's place on the kiln network, as kilnd records it in the sandbox's directory from just before CNI ADD
 * until CNI DEL: its namespace, address and published ports, and the CNI result (the DEL and CHECK prevResult).
 * {@code result} is null while ADD has not completed; DEL is still run then, as the CNI spec allows.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record Attachment(String network, String sandboxId, String netns, String ipAddress, int prefixLength, String gateway,
                         String macAddress, List<PortMapping> ports, JsonNode result) {

    /** The record's name in the sandbox's directory. */
    public static final String FILE = "network.json";

    public Attachment {
        network = network == null ? KilnNetwork.NAME : network; // records written before networks had names
        ports = ports == null ? List.of() : List.copyOf(ports);
    }

    static Attachment pending(String network, String sandboxId, String netns, List<PortMapping> ports) {
        return new Attachment(network, sandboxId, netns, null, 0, null, null, ports, null);
    }
}
