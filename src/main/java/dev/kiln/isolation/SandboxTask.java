package dev.kiln.isolation;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * A started sandbox, as containerd's Task is to its container record: its main process and everything done to the
 * sandbox while it runs. An {@link Isolator} hands one out at {@link Isolator#start} and re-opens it from files with
 * {@link Isolator#adopt} after a daemon restart, so the engine never learns how the sandbox is monitored (a kiln-shim,
 * a runtime's state, a VMM). A task whose main process ended still answers {@link #exitStatus} and {@link #bootLog}.
 */
public interface SandboxTask extends RunningProcess {

    /** The pid of the sandbox's monitor on the host, recorded to tell this run from the next one. */
    long pid();

    /** Sends {@code signal} to the sandbox's main process (PID 1 inside it); SIGKILL ends the whole sandbox. */
    void kill(int signal);

    /** Starts another process in the running sandbox; with a non-zero {@code waitAttach} it waits for a client. */
    RunningProcess exec(String execId, ProcessSpec process, Duration waitAttach);

    /** The sandbox's processes, as {@code ps} prints them. */
    String top();

    /** Resource usage now. */
    SandboxStats stats();

    /**
     * Freezes every process of the sandbox and returns once they are frozen; isolations that cannot refuse with one
     * line. {@link #resume} undoes it.
     */
    void pause();

    void resume();

    /**
     * Applies new limits (all of them, 0: unlimited) to the running sandbox ({@code docker update}); isolations that
     * cannot change a running sandbox's limits refuse with one line saying what they can do.
     */
    default void update(Resources limits) {
        throw new dev.kiln.KilnException(dev.kiln.KilnException.Kind.UNAVAILABLE,
                "this isolation cannot change the limits of a running sandbox");
    }

    /** Whether the kernel's OOM killer ended the main process (asked once it ended, before the isolator's cleanup). */
    boolean oomKilled();

    /**
     * SIGKILL to the sandbox's monitor itself (not the sandbox), if it still runs: for one that stopped doing its job
     * (stopped, hung). Its run then ends as {@link RunningProcess.Gone}; {@link Isolator#cleanup} kills what is left.
     */
    void killMonitor();

    /**
     * The host pids of the sandbox's front processes: the host-side processes a hostile workload reaches first, whose
     * privileges and seccomp filter bound what it can ask of the host kernel ({@code kiln audit}). Empty while
     * nothing runs.
     */
    default java.util.List<Long> frontPids() {
        return java.util.List.of();
    }

    /** The guest kernel's console of this run ({@code kiln logs --boot}); empty where no kernel boots. */
    default Optional<Path> bootLog() {
        return Optional.empty();
    }
}
