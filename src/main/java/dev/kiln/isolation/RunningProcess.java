package dev.kiln.isolation;

import dev.kiln.isolation.shim.AttachConnection;
import dev.kiln.isolation.shim.ExitStatus;

import java.io.IOException;
import java.time.Duration;
import java.util.Optional;

/**
 * A process started by an isolator (a sandbox's main process or an exec) as the engine and API use it: attach to
 * its streams (the shim's framing, docs/shim.md), and learn how it ended.
 */
public interface RunningProcess {

    AttachConnection attach() throws IOException;

    Optional<ExitStatus> exitStatus();

    /** Waits up to {@code timeout}; empty if it still runs then. */
    Optional<ExitStatus> await(Duration timeout);
}
