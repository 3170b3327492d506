package dev.kiln.isolation.shim;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * How kiln-shim runs its command: with a pseudo-terminal, with a stdin pipe fed by attach clients, waiting (at most
 * {@code waitAttach}) for the first attach client before starting, and where the json-file log goes.
 *
 * @param waitAttach null to start at once
 * @param log        null for {@code DIR/log.json}
 */
public record ShimOptions(boolean tty, boolean stdin, Duration waitAttach, Path log) {

    public ShimOptions {
        if (waitAttach != null && (waitAttach.isNegative() || waitAttach.toSeconds() > 86_400)) {
            throw new IllegalArgumentException("waitAttach must be between 0 and 24 h: " + waitAttach);
        }
    }

    public static ShimOptions defaults() {
        return new ShimOptions(false, false, null, null);
    }

    public ShimOptions withTty(boolean on) {
        return new ShimOptions(on, stdin, waitAttach, log);
    }

    public ShimOptions withStdin(boolean on) {
        return new ShimOptions(tty, on, waitAttach, log);
    }

    public ShimOptions withWaitAttach(Duration timeout) {
        return new ShimOptions(tty, stdin, timeout, log);
    }

    public ShimOptions withLog(Path file) {
        return new ShimOptions(tty, stdin, waitAttach, file);
    }

    /** The options as kiln-shim arguments (before {@code --}). */
    List<String> arguments() {
        List<String> args = new ArrayList<>();
        if (tty) args.add("--tty");
        if (stdin) args.add("--stdin");
        if (waitAttach != null) {
            // the shim counts whole seconds; round up so a short wait is not turned into none
            args.add("--wait-attach");
            args.add(Long.toString((waitAttach.toMillis() + 999) / 1000));
        }
        if (log != null) {
            args.add("--log");
            args.add(log.toAbsolutePath().toString());
        }
        return args;
    }
}
