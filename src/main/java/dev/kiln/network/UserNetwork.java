package dev.kiln.network;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;

import java.util.Map;

/**
 * A network made with {@code kiln network create}, as recorded in {@code ROOT/network/<name>.json}: its identity
 * (64 hex, as Docker's), the bridge that carries it ({@code kiln-} + 8 hex of the id, within the kernel's 15
 * characters), its IPv4 subnet and gateway (where kilnd's resolver for it listens), when it was made, its labels;
 * {@code internal}: no traffic to or from outside the bridge (Docker's --internal); {@code ipRange}: the part of the
 * subnet sandboxes get addresses from (Docker's --ip-range; null: all of it).
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record UserNetwork(String id, String name, String bridge, String subnet, String gateway, String created,
                          Map<String, String> labels, boolean internal, String ipRange) {

    public UserNetwork {
        labels = labels == null ? Map.of() : Map.copyOf(labels);
    }
}
