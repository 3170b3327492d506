package dev.kiln.engine;

/**
 * The life-cycle: created → running → exited (→ running again on start/restart) → removed (row deleted). A running
 * sandbox may be paused (its processes frozen) and unpaused: still running, as Docker counts it.
 */
public enum SandboxState {
    CREATED, RUNNING, PAUSED, EXITED, REMOVING;

    public String wire() {
        return name().toLowerCase();
    }

    public static SandboxState of(String s) {
        return valueOf(s.toUpperCase());
    }
}
