package dev.kiln.engine;

import dev.kiln.isolation.ProcessSpec;

/**
 * A sandbox record as the engine keeps it: the configuration it was created with, the process that resolved to, and
 * its life-cycle facts. Times are epoch milliseconds (0: never).
 */
public record Sandbox(String id, String name, String image, String imageId, String isolation, SandboxState state,
                      SandboxConfig config, ProcessSpec process, long created, long started, long finished,
                      Integer exitCode, boolean oomKilled, long shimPid, int restarts) {

    public String shortId() {
        return id.substring(0, 12);
    }

    /** Its main process runs (frozen, too: a paused sandbox is running, as in Docker). */
    public boolean running() {
        return state == SandboxState.RUNNING || state == SandboxState.PAUSED;
    }

    public boolean paused() {
        return state == SandboxState.PAUSED;
    }
}
