package dev.kiln.isolation;

import dev.kiln.KilnException;

import java.io.IOException;
import java.time.Duration;
import java.util.Optional;

/**
 * A process started by an isolator (a sandbox's main process or an exec) as the engine and API use it: attach to
 * its streams (the shim's framing, docs/shim.md), and learn how it ended.
 */
public interface RunningProcess {

    /**
     * The process's monitor died without recording its exit: it was killed (or crashed, or the host reused its pid).
     * What became of the process is unknown here; its isolator can tell whether the sandbox still runs.
     */
    final class Gone extends KilnException {
        public Gone(String message) {
            super(Kind.INTERNAL, message);
        }
    }

    AttachConnection attach() throws IOException;

    Optional<ExitStatus> exitStatus();

    /** Waits up to {@code timeout}; empty if it still runs then. Throws {@link Gone} if its monitor died unrecorded. */
    Optional<ExitStatus> await(Duration timeout);

    /** Whether the process's monitor still runs (it outlives the process by the moment it takes to record its end). */
    boolean alive();

    /** Whether it is over: its exit is recorded, or nothing is left that could record one. */
    default boolean ended() {
        return exitStatus().isPresent() || !alive();
    }
}
