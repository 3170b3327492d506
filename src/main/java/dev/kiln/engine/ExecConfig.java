package dev.kiln.engine;

import java.util.List;

/**
 * A process to start in a running sandbox, as the engine takes it from either API face. {@code env}, {@code workdir}
 * and {@code user} override the main process's (null or empty: its own). {@code detach}: start at once rather than
 * wait for the first attach client. {@code attachStdout}/{@code attachStderr}: which of its output streams an
 * attached client receives (Docker's AttachStdout/AttachStderr, kept with the exec as Docker keeps them; kiln's face
 * takes both).
 */
public record ExecConfig(List<String> cmd, List<String> env, String workdir, String user, boolean tty,
                         boolean openStdin, boolean detach, boolean attachStdout, boolean attachStderr) {

    /** An exec whose client receives both output streams. */
    public ExecConfig(List<String> cmd, List<String> env, String workdir, String user, boolean tty,
                      boolean openStdin, boolean detach) {
        this(cmd, env, workdir, user, tty, openStdin, detach, true, true);
    }

    /** The same process, started detached or not. */
    public ExecConfig detached(boolean detach) {
        return new ExecConfig(cmd, env, workdir, user, tty, openStdin, detach, attachStdout, attachStderr);
    }
}
