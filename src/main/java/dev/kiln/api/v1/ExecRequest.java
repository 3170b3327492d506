package dev.kiln.api.v1;

import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;

/** {@code POST /v1/sandboxes/{id}/exec}: a process to start in a running sandbox. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ExecRequest(List<String> cmd, List<String> env, String workdir, String user, boolean tty,
                          boolean openStdin, boolean detach) {
}
