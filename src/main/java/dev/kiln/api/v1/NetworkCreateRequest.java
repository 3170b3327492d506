package dev.kiln.api.v1;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.Map;

/**
 * {@code POST /v1/networks}: what {@code kiln network create} asks for. {@code subnet}/{@code gateway} null: kilnd
 * picks a free subnet and its first address. {@code internal}: Docker's --internal (no traffic past the bridge);
 * {@code ipRange}: Docker's --ip-range, a CIDR inside the subnet sandboxes get addresses from.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = false)
public record NetworkCreateRequest(String name, String subnet, String gateway, Map<String, String> labels,
                                   boolean internal, String ipRange) {

    /** A network with the whole subnet handed out and a way out (not internal). */
    public NetworkCreateRequest(String name, String subnet, String gateway, Map<String, String> labels) {
        this(name, subnet, gateway, labels, false, null);
    }
}
