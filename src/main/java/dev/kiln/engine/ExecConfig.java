package dev.kiln.engine;

import java.util.List;

/**
 * A process to start in a running sandbox, as the engine takes it from either API face. {@code env}, {@code workdir}
 * and {@code user} override the main process's (null or empty: its own). {@code detach}: start at once rather than
 * wait for the first attach client.
 */
public record ExecConfig(List<String> cmd, List<String> env, String workdir, String user, boolean tty,
                         boolean openStdin, boolean detach) {

    /** The same process, started detached or not. */
    public ExecConfig detached(boolean detach) {
        return new ExecConfig(cmd, env, workdir, user, tty, openStdin, detach);
    }
}
