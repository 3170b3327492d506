package dev.kiln.api.v1;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;

/**
 * {@code POST /v1/networks/{name}/connect} and {@code .../disconnect}: the sandbox (name or id); for connect its
 * further names on the network ({@code --alias}) and its address there ({@code --ip}; null for the next free one).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = false)
public record NetworkConnectRequest(String sandbox, List<String> aliases, String ip) {
}
