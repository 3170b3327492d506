package dev.kiln.engine;

import dev.kiln.api.v1.CreateRequest;
import dev.kiln.isolation.ProcessSpec;

/**
 * A sandbox record as the engine keeps it: the request it was created from, the process it resolved to, and its
 * life-cycle facts. Times are epoch milliseconds (0: never).
 */
public record Sandbox(String id, String name, String image, String imageId, String isolation, SandboxState state,
                      CreateRequest request, ProcessSpec process, long created, long started, long finished,
                      Integer exitCode, boolean oomKilled, long shimPid, int restarts) {

    public String shortId() {
        return id.substring(0, 12);
    }

    public boolean running() {
        return state == SandboxState.RUNNING;
    }
}
