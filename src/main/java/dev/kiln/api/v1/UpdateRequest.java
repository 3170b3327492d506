package dev.kiln.api.v1;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * {@code POST /v1/sandboxes/{id}/update} ({@code kiln update}): null leaves a setting as it is. {@code restart} as
 * typed ({@code on-failure:3}); {@code pidsLimit} 0 or -1 lifts the limit.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record UpdateRequest(Long nanoCpus, Long memory, Long pidsLimit, String restart) {
}
