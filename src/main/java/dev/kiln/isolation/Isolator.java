package dev.kiln.isolation;

import dev.kiln.isolation.shim.Shim;

import java.time.Duration;

/**
 * One isolation technology: {@code container} (runc), {@code gvisor} (runsc), {@code vm} (QEMU/Firecracker). The
 * engine drives every sandbox through this interface only; an implementation never reads image content, it gets a
 * {@link SandboxSpec} with the image's tree and the sandbox's own directory. Main processes and execs run under a
 * {@link Shim}, so they outlive the daemon and their output lands in log files.
 */
public interface Isolator {

    /** The name users pick with {@code --isolation}. */
    String name();

    /** The runtime binary or VMM this isolator drives, for error messages and {@code inspect}. */
    String runtime();

    /** The runtime binary or VMM of one sandbox (the vm isolation's depends on its {@code --runtime}). */
    default String runtime(SandboxSpec spec) {
        return runtime();
    }

    /** Makes the sandbox startable (bundle, writable layer); nothing runs yet. Undone by {@link #cleanup}. */
    void create(SandboxSpec spec);

    /** Starts the main process; the shim holds it until the first attach client or {@code waitAttach} passed. */
    Shim start(SandboxSpec spec, Duration waitAttach);

    /** Sends a signal to the main process (through the runtime, so it reaches PID 1 of the sandbox). */
    void signal(SandboxSpec spec, int signal);

    /** Starts another process in the running sandbox under its own shim in {@code execDir}. */
    RunningProcess exec(SandboxSpec spec, String execId, ProcessSpec process, Duration waitAttach);

    /** Processes in the sandbox, as {@code ps} prints them. */
    String top(SandboxSpec spec);

    /** Whether the kernel's OOM killer ended the main process (asked before {@link #cleanup}). */
    boolean oomKilled(SandboxSpec spec);

    /** Resource usage now. */
    SandboxStats stats(SandboxSpec spec);

    /**
     * Whether anything of the sandbox still runs on the host (the runtime's container, the VMM): asked when its shim
     * died without recording an exit, before {@link #cleanup} kills what is left.
     */
    boolean running(SandboxSpec spec);

    /**
     * Releases what the sandbox holds on the host once its main process is gone (runtime state, mounts); with
     * {@code removeFiles} also its writable layer. Kills whatever of the sandbox still runs (its shim may have died
     * before it). Idempotent, and safe on a half-created sandbox.
     */
    void cleanup(SandboxSpec spec, boolean removeFiles);

    /**
     * Freezes every process of the running sandbox and returns once they are frozen ({@code runc pause}); the
     * isolations that cannot refuse with one line. {@link #resume} undoes it.
     */
    default void pause(SandboxSpec spec) {
        throw new dev.kiln.KilnException(dev.kiln.KilnException.Kind.UNAVAILABLE, "pausing is not supported for the "
                + name() + " isolation");
    }

    default void resume(SandboxSpec spec) {
        throw new dev.kiln.KilnException(dev.kiln.KilnException.Kind.UNAVAILABLE, "pausing is not supported for the "
                + name() + " isolation");
    }

    /**
     * The host pids of the sandbox's front processes: the host-side processes a hostile workload reaches first,
     * whose privileges and seccomp filter bound what it can ask of the host kernel ({@code kiln audit}). container:
     * the workload's own init process; gvisor: runsc's Sentry (the sandbox process, {@code runsc state}'s pid); vm:
     * the VMM. Empty while nothing runs.
     */
    default java.util.List<Long> frontPids(SandboxSpec spec) {
        return java.util.List.of();
    }

    /** The guest kernel's console log ({@code kiln logs --boot}); empty for isolations that boot no kernel. */
    default java.util.Optional<java.nio.file.Path> bootLog(SandboxSpec spec) {
        return java.util.Optional.empty();
    }
}
