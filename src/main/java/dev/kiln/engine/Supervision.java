package dev.kiln.engine;

/**
 * How kilnd looks after a running sandbox: its restart policy and its health check (null: none given, the image's).
 * One component of {@link SandboxConfig}; {@code kiln update} / {@code docker update} may change the policy.
 */
public record Supervision(RestartPolicy restart, Healthcheck healthcheck) {

    public static final Supervision NONE = new Supervision(RestartPolicy.NO, null);

    public Supervision {
        restart = restart == null ? RestartPolicy.NO : restart;
    }

    /** A config stored before supervision existed has none. */
    public static Supervision of(SandboxConfig c) {
        return c.supervision() == null ? NONE : c.supervision();
    }
}
