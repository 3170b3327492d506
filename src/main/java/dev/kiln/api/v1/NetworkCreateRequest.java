package dev.kiln.api.v1;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.Map;

/**
 * {@code POST /v1/networks}: what {@code kiln network create} asks for. {@code subnet}/{@code gateway} null: kilnd
 * picks a free subnet and its first address.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = false)
public record NetworkCreateRequest(String name, String subnet, String gateway, Map<String, String> labels) {
}
