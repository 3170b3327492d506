package dev.kiln.isolation.shim;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * How kiln-shim runs its command: with a pseudo-terminal, with a stdin pipe fed by attach clients, waiting (at most
 * {@code waitAttach}) for the first attach client before starting, or with {@code holdOutput} starting at once and
 * holding only its output and exit for that client, where the json-file log goes, and whether the command is an OCI
 * runtime that creates and starts a container the shim then reaps itself (docs/shim.md).
 *
 * @param waitAttach null to start at once
 * @param holdOutput with a {@code waitAttach}: the command starts at once, its output and exit wait for the client
 * @param log        null for {@code DIR/log.json}
 * @param container  null to run the command itself
 */
public record ShimOptions(boolean tty, boolean stdin, Duration waitAttach, boolean holdOutput, Path log,
                          Container container) {

    /**
     * Container mode: the shim's command is the runtime with its global flags; the shim runs its {@code create
     * --bundle BUNDLE ID} and {@code start ID}, reaps the container's init itself, and {@code delete}s it at the end.
     */
    public record Container(String id, Path bundle) {
        public Container {
            if (id.isEmpty() || id.startsWith("-")) throw new IllegalArgumentException("bad container id: " + id);
        }
    }

    public ShimOptions {
        if (waitAttach != null && (waitAttach.isNegative() || waitAttach.toSeconds() > 86_400)) {
            throw new IllegalArgumentException("waitAttach must be between 0 and 24 h: " + waitAttach);
        }
        if (holdOutput && (waitAttach == null || container != null)) {
            throw new IllegalArgumentException("holdOutput needs a waitAttach and a command run as it is");
        }
    }

    public static ShimOptions defaults() {
        return new ShimOptions(false, false, null, false, null, null);
    }

    public ShimOptions withTty(boolean on) {
        return new ShimOptions(on, stdin, waitAttach, holdOutput, log, container);
    }

    public ShimOptions withStdin(boolean on) {
        return new ShimOptions(tty, on, waitAttach, holdOutput, log, container);
    }

    public ShimOptions withWaitAttach(Duration timeout) {
        return new ShimOptions(tty, stdin, timeout, holdOutput, log, container);
    }

    /**
     * With {@link #withWaitAttach}: the command starts at once instead of when the first client attaches; the shim
     * holds its output (in its pipes) and its exit until that client comes or the wait runs out, so the client still
     * gets everything. For a command whose own start is long (runsc boots a Sentry) and overlaps the attach.
     */
    public ShimOptions withHoldOutput() {
        return new ShimOptions(tty, stdin, waitAttach, true, log, container);
    }

    public ShimOptions withLog(Path file) {
        return new ShimOptions(tty, stdin, waitAttach, holdOutput, file, container);
    }

    /** The command is an OCI runtime (binary and global flags) that is to create and start container {@code id}. */
    public ShimOptions withContainer(String id, Path bundle) {
        return new ShimOptions(tty, stdin, waitAttach, holdOutput, log, new Container(id, bundle));
    }

    /** The options as kiln-shim arguments (before {@code --}). */
    List<String> arguments() {
        List<String> args = new ArrayList<>();
        if (tty) args.add("--tty");
        if (stdin) args.add("--stdin");
        if (waitAttach != null) {
            // the shim counts whole seconds; round up so a short wait is not turned into none
            args.add(holdOutput ? "--hold-output" : "--wait-attach");
            args.add(Long.toString((waitAttach.toMillis() + 999) / 1000));
        }
        if (log != null) {
            args.add("--log");
            args.add(log.toAbsolutePath().toString());
        }
        if (container != null) {
            args.addAll(List.of("--container", container.id(), "--bundle",
                    container.bundle().toAbsolutePath().toString()));
        }
        return args;
    }
}
