package dev.kiln.engine;

/** The life-cycle: created → running → exited (→ running again on start/restart) → removed (row deleted). */
public enum SandboxState {
    CREATED, RUNNING, EXITED, REMOVING;

    public String wire() {
        return name().toLowerCase();
    }

    public static SandboxState of(String s) {
        return valueOf(s.toUpperCase());
    }
}
