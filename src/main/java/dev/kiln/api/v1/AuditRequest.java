package dev.kiln.api.v1;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;

/**
 * {@code POST /v1/audit}: what {@code kiln audit} asks for. {@code cmd}: null for the image's command;
 * {@code isolation}: {@code container}, {@code gvisor}, {@code vm} or {@code all} (null: all);
 * {@code windowSeconds}: how long the front processes' syscalls are counted at most (0: kilnd's default, 30 s).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = false)
public record AuditRequest(String image, List<String> cmd, String isolation, int windowSeconds) {
}
