package dev.kiln.containerd;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * One process of a VM task, as the host sees it: the relay (kiln-shim {@code --relay-vm}, the init: the VM itself)
 * or an exec's relay ({@code --relay-exec}). Each maps its guest process onto its own stdio and exits with that
 * process's status, so the task's stdio is simply the relay's: containerd's fifos, or with a terminal a pty this shim
 * made, copied to and from them. Signals to the relay are passed to the guest's process (SIGKILL ends the relay, and
 * the VMM dies with it).
 */
final class VmProcess {

    final String execId;
    final boolean terminal;
    final String stdinPath, stdoutPath, stderrPath;
    private final StdioUri stdin, stdout, stderr;
    private volatile ShimProcess.State state = ShimProcess.State.CREATED;
    private volatile Process process;
    private volatile Pty pty;
    private final List<Thread> copiers = new ArrayList<>();
    final CompletableFuture<ShimProcess.Exit> exit = new CompletableFuture<>();

    VmProcess(String execId, boolean terminal, String stdin, String stdout, String stderr) {
        this.execId = execId;
        this.terminal = terminal;
        this.stdinPath = stdin;
        this.stdoutPath = stdout;
        this.stderrPath = stderr;
        this.stdin = StdioUri.parse(stdin);
        this.stdout = StdioUri.parse(stdout);
        this.stderr = StdioUri.parse(stderr);
    }

    ShimProcess.State state() {
        return state;
    }

    int pid() {
        Process p = process;
        return p == null ? 0 : (int) p.pid();
    }

    boolean stdinOpen() {
        return stdin.kind() != StdioUri.Kind.NONE;
    }

    void started() {
        if (state == ShimProcess.State.CREATED) state = ShimProcess.State.RUNNING;
    }

    /** Starts {@code command} (a relay) with this process's stdio; {@code errors} takes its stderr when none. */
    int launch(List<String> command, Path errors, Runnable onExit) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command);
        RandomAccessFile stdinHold = null;
        if (terminal) {
            pty = Pty.open();
            // the slave is opened by the relay's own new session, never by this JVM: the shim is a session leader
            // (setsid), and a terminal it opened would become its controlling one, whose hang-up SIGHUPs the shim
            List<String> wrapped = new ArrayList<>(List.of("setsid", "sh", "-c",
                    "exec \"$0\" \"$@\" <\"$KILN_TTY\" >\"$KILN_TTY\" 2>&1"));
            wrapped.addAll(command);
            pb = new ProcessBuilder(wrapped);
            pb.environment().put("KILN_TTY", pty.slave().toString());
            pb.redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
            pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
            pb.redirectError(ProcessBuilder.Redirect.appendTo(errors.toFile()));
        } else {
            stdinHold = stdin.redirectStdin(pb);
            pb.redirectOutput(output(stdout, null));
            pb.redirectError(output(stderr, errors));
        }
        try {
            process = Children.start(pb);
        } finally {
            if (stdinHold != null) stdinHold.close();
        }
        if (terminal) copyTerminal();
        process.onExit().thenAcceptAsync(p -> {
            int status = p.exitValue();
            Instant at = Instant.now();
            if (pty != null) Libc.close(pty.slaveHold()); // the copy ends at the master's EIO once no slave is open
            for (Thread t : copiers) {
                try {
                    t.join(2000); // the terminal's last output reaches the fifo before the exit is reported
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            if (pty != null) Libc.close(pty.master());
            state = ShimProcess.State.STOPPED;
            exit.complete(new ShimProcess.Exit(status, at));
            onExit.run();
        }, r -> Thread.ofPlatform().daemon().start(r));
        return (int) process.pid();
    }

    private static ProcessBuilder.Redirect output(StdioUri uri, Path none) {
        return switch (uri.kind()) {
            case NONE -> none == null ? ProcessBuilder.Redirect.DISCARD : ProcessBuilder.Redirect.appendTo(none.toFile());
            case FIFO -> ProcessBuilder.Redirect.to(uri.path().toFile());
            case FILE -> ProcessBuilder.Redirect.appendTo(uri.path().toFile());
            case BINARY -> throw TtrpcServer.RpcError.unimplemented("binary:// logs are not supported for vm tasks by "
                    + "containerd-shim-kiln-v2 yet (use a fifo or file://)");
        };
    }

    private void copyTerminal() {
        Thread out = TerminalCopy.start(pty.master(), stdin, stdout, "vm-tty");
        if (out != null) copiers.add(out);
    }

    /** Sends {@code signal} to the relay, which passes it to the guest's process. */
    void signal(int signal) throws IOException, InterruptedException {
        TaskService.run(List.of("kill", "-s", Integer.toString(signal), Integer.toString(pid())),
                "kill " + (execId.isEmpty() ? "init" : execId));
    }

    /** The terminal's size; the relay reads it on SIGWINCH and tells the guest. */
    void resize(int width, int height) {
        Pty p = pty;
        if (p == null) throw TtrpcServer.RpcError.precondition("process has no terminal");
        Libc.resize(p.master(), width, height);
        // the relay leads the terminal's session, so the kernel sends it SIGWINCH itself
    }
}
