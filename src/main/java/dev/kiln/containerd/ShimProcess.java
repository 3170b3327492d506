package dev.kiln.containerd;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * One process of a task: the init (made by {@code runc create}) or an exec ({@code runc exec --detach}). The runtime
 * writes its host pid to a file and exits; the process is then re-parented to this shim (a child subreaper) which
 * waits for it on a platform thread. Its stdio is containerd's fifos given straight to the runtime, or, with a
 * terminal, the pty master the runtime sends over the console socket, copied to and from the fifos.
 */
final class ShimProcess {

    enum State { CREATED, RUNNING, STOPPED }

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON =
            new com.fasterxml.jackson.databind.ObjectMapper();

    record Exit(int status, Instant at) {}

    final String execId;          // "" for the init
    final StdioUri stdin;
    final StdioUri stdout;
    final StdioUri stderr;
    final boolean terminal;
    final String stdinPath, stdoutPath, stderrPath;
    private volatile State state = State.CREATED;
    private volatile int pid;
    private volatile int consoleFd = -1;
    private volatile boolean joinsSandbox;
    private volatile BinaryLogger logger;
    private final List<Thread> copiers = new ArrayList<>();
    final CompletableFuture<Exit> exit = new CompletableFuture<>();
    /** How long the runtime's process took to start (Children.start), for the shim's debug lines. */
    volatile long spawnMs;

    ShimProcess(String execId, boolean terminal, String stdin, String stdout, String stderr) {
        this.execId = execId;
        this.terminal = terminal;
        this.stdinPath = stdin;
        this.stdoutPath = stdout;
        this.stderrPath = stderr;
        this.stdin = StdioUri.parse(stdin);
        this.stdout = StdioUri.parse(stdout);
        this.stderr = StdioUri.parse(stderr);
    }

    State state() {
        return state;
    }

    int pid() {
        return pid;
    }

    void started() {
        if (state == State.CREATED) state = State.RUNNING;
    }

    /**
     * Runs {@code command} (a runtime's create or exec with --detach --pid-file {@code pidFile}, and
     * --console-socket {@code console} when there is a terminal) with this process's stdio; returns the pid.
     */
    int launch(List<String> command, Path pidFile, Path console, Path runtimeLog, Runnable onExit) throws IOException,
            InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(command).directory(pidFile.getParent().toFile());
        RandomAccessFile stdinHold = null;
        int consoleListen = -1;
        BinaryLogger logger = null;
        if (stdout.kind() == StdioUri.Kind.BINARY) {
            if (terminal) {
                throw TtrpcServer.RpcError.unimplemented("binary:// logging with a terminal is not supported by "
                        + "containerd-shim-kiln-v2");
            }
            // the process's id for the logger: the exec's, or the task's (the last argument of create/exec)
            logger = BinaryLogger.start(stdout.uri(), execId.isEmpty() ? command.getLast() : execId,
                    pidFile.getParent());
            pb.redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
            pb.redirectOutput(ProcessBuilder.Redirect.to(logger.out.toFile()));
            pb.redirectError(ProcessBuilder.Redirect.to(logger.err.toFile()));
        } else if (joinsSandbox) {
            pb.redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
            pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
            pb.redirectError(ProcessBuilder.Redirect.appendTo(runtimeLog.toFile()));
        } else if (terminal) {
            Files.deleteIfExists(console);
            consoleListen = Libc.listenUnix(console.toString());
            pb.redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
            pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
            pb.redirectError(ProcessBuilder.Redirect.appendTo(runtimeLog.toFile()));
        } else {
            stdinHold = stdin.redirectStdin(pb);
            pb.redirectOutput(output(stdout));
            pb.redirectError(stderr.kind() == StdioUri.Kind.NONE ? ProcessBuilder.Redirect.appendTo(
                    runtimeLog.toFile()) : output(stderr));
        }
        Process runtime;
        long t0 = System.nanoTime();
        try {
            runtime = Children.start(pb);
            spawnMs = (System.nanoTime() - t0) / 1_000_000;
            if (consoleListen >= 0) {
                int listen = consoleListen;
                CompletableFuture<Integer> master = CompletableFuture.supplyAsync(() -> Libc.receiveFd(listen),
                        r -> Thread.ofPlatform().daemon().start(r));
                if (!runtime.waitFor(60, TimeUnit.SECONDS)) {
                    runtime.destroyForcibly();
                    throw TtrpcServer.RpcError.precondition(command.getFirst() + " did not finish in 60 s");
                }
                if (runtime.exitValue() != 0) throw failed(command, runtime.exitValue(), runtimeLog);
                try {
                    consoleFd = master.get(5, TimeUnit.SECONDS);
                } catch (Exception e) {
                    throw TtrpcServer.RpcError.precondition("no terminal from " + command.getFirst() + ": "
                            + e.getMessage());
                }
                copyTerminal();
            } else {
                if (!runtime.waitFor(60, TimeUnit.SECONDS)) {
                    runtime.destroyForcibly();
                    throw TtrpcServer.RpcError.precondition(command.getFirst() + " did not finish in 60 s");
                }
                if (runtime.exitValue() != 0) throw failed(command, runtime.exitValue(), runtimeLog);
            }
        } catch (IOException | RuntimeException | InterruptedException e) {
            if (logger != null) logger.stop();
            throw e;
        } finally {
            if (logger != null) logger.release();
            if (stdinHold != null) stdinHold.close();
            if (consoleListen >= 0) {
                Libc.close(consoleListen);
                Files.deleteIfExists(console);
            }
        }
        this.logger = logger;
        pid = Integer.parseInt(Files.readString(pidFile).strip());
        if (!joinsSandbox) watch(Children.exitOf(pid), onExit);
        return pid;
    }

    /**
     * This process joins a sandbox (a container in a gVisor pod): its stdio goes to the runtime's start, not its
     * create, and its exit is not the exit of the pid the runtime wrote (runsc writes the sandbox's) but comes
     * through {@link #watch} once started ({@link GvisorPod}).
     */
    void joinSandbox() {
        joinsSandbox = true;
    }

    boolean joinsSandbox() {
        return joinsSandbox;
    }

    /** Completes this process's exit, and runs {@code onExit}, when {@code source} completes. */
    void watch(CompletableFuture<Children.Exit> source, Runnable onExit) {
        source.thenAcceptAsync(reaped -> {
            int status = reaped.status();
            Instant at = reaped.at();
            for (Thread t : copiers) {
                try {
                    t.join(2000);   // the terminal's last output reaches the fifo before the exit is reported
                } catch (InterruptedException ignored) {
                    Thread.currentThread().interrupt();
                }
            }
            state = State.STOPPED;
            exit.complete(new Exit(status < 0 ? 255 : status, at));
            onExit.run();
            if (logger != null) logger.stop();
        }, r -> Thread.ofPlatform().daemon().start(r));
    }

    static ProcessBuilder.Redirect output(StdioUri uri) {
        return switch (uri.kind()) {
            case NONE -> ProcessBuilder.Redirect.DISCARD;
            case FIFO -> ProcessBuilder.Redirect.to(uri.path().toFile());
            case FILE -> ProcessBuilder.Redirect.appendTo(uri.path().toFile());
            case BINARY -> throw TtrpcServer.RpcError.unimplemented("binary:// logging for a container in a "
                    + "kiln-gvisor pod is not supported by containerd-shim-kiln-v2");
        };
    }

    private static TtrpcServer.RpcError failed(List<String> command, int code, Path runtimeLog) {
        String last = lastError(runtimeLog);
        String verb = command.contains("create") ? "create" : "exec";
        return TtrpcServer.RpcError.precondition(Path.of(command.getFirst()).getFileName() + " " + verb + " exited "
                + code + (last.isEmpty() ? "" : ": " + last));
    }

    /** The last error the runtime logged ({@code --log-format json} lines, or plain ones), or "". */
    static String lastError(Path runtimeLog) {
        String last = "";
        try {
            List<String> lines = Files.exists(runtimeLog) ? Files.readAllLines(runtimeLog) : List.of();
            for (String l : lines) {
                if (l.isBlank()) continue;
                String msg = l.strip();
                try {
                    var node = JSON.readTree(msg);
                    if (!node.path("level").asText().equals("error")) continue;
                    msg = node.path("msg").asText(msg);
                } catch (IOException notJson) {
                    // a plain line
                }
                last = msg;
            }
        } catch (IOException ignored) {
            // nothing to add
        }
        return last;
    }

    /** Terminal output to the stdout fifo/file; the stdin fifo to the terminal. */
    private void copyTerminal() {
        Thread out = TerminalCopy.start(consoleFd, stdin, stdout, "tty");
        if (out != null) copiers.add(out);
    }

    void resize(int width, int height) {
        if (consoleFd < 0) throw TtrpcServer.RpcError.precondition("process " + (execId.isEmpty() ? "init"
                : execId) + " has no terminal");
        Libc.resize(consoleFd, width, height);
    }
}
