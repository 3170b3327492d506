package dev.kiln.isolation.shim;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.isolation.AttachConnection;
import dev.kiln.isolation.ExitStatus;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * A handle on one kiln-shim process: the per-sandbox monitor that runs a command (usually {@code runc run} or
 * {@code runsc run}), owns its stdio, writes its log and records its exit in {@code dir}. The shim is detached from
 * the daemon, so a handle can be re-made with {@link #adopt} after a daemon restart. See docs/shim.md.
 *
 * @param dir the shim's directory: shim.pid, attach.sock, started.json, exit.json, log.json, shim.log
 * @param pid the shim's own pid (not the command's)
 */
public record Shim(Path dir, long pid) implements dev.kiln.isolation.RunningProcess {

    /** The command's pid (in the host pid namespace) and when the shim forked it. */
    public record Started(long pid, Instant startedAt) {}

    private static final Duration LAUNCH_TIMEOUT = Duration.ofSeconds(10);
    private static final Duration POLL = Duration.ofMillis(20);
    /**
     * The longest pause of a sandbox's exit watch while inotify wakes it: exit.json wakes the watcher the moment it
     * appears, so the poll only finds a shim that died without a word, and a watch polling every 20 ms for the
     * sandbox's whole life cost kilnd CPU for every running sandbox (two exceptions and a /proc read each time: 500
     * a second with ten sandboxes, during a burst of creates too; issue 17).
     */
    private static final Duration POLL_IDLE = Duration.ofSeconds(1);
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Starts a shim for {@code command} and returns once it is ready: attach.sock listens and shim.pid is written.
     * The command itself may still be starting (or, with {@link ShimOptions#waitAttach}, waiting for a client).
     */
    public static Shim launch(Path shimBinary, Path dir, ShimOptions opts, List<String> command) {
        if (command.isEmpty()) throw KilnException.invalid("kiln-shim needs a command to run");
        List<String> argv = new ArrayList<>();
        argv.add(shimBinary.toString());
        argv.add("--dir");
        argv.add(dir.toAbsolutePath().toString());
        argv.addAll(opts.arguments());
        argv.add("--");
        argv.addAll(command);
        Path err = null;
        try {
            err = Files.createTempFile("kiln-shim-", ".err");
            Process launcher = new ProcessBuilder(argv)
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectError(err.toFile())
                    .start();
            if (!launcher.waitFor(LAUNCH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                launcher.destroyForcibly();
                throw new KilnException(KilnException.Kind.UNAVAILABLE, "kiln-shim for " + dir
                        + " did not report ready within " + LAUNCH_TIMEOUT.toSeconds() + " s (see its shim.log)");
            }
            if (launcher.exitValue() != 0) {
                String line = Files.readString(err, StandardCharsets.UTF_8).strip().lines().findFirst().orElse("");
                throw new KilnException(KilnException.Kind.INTERNAL,
                        line.isEmpty() ? "kiln-shim exited with " + launcher.exitValue() + " for " + dir : line);
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL,
                    "cannot run " + shimBinary + ": " + e.getMessage() + " (run scripts/setup)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while starting kiln-shim for " + dir, e);
        } finally {
            deleteQuietly(err);
        }
        return adopt(dir);
    }

    /** A handle on the shim that owns {@code dir}, e.g. after a daemon restart. It may have exited since. */
    public static Shim adopt(Path dir) {
        Path file = dir.resolve("shim.pid");
        try {
            return new Shim(dir, Long.parseLong(Files.readString(file).strip()));
        } catch (NoSuchFileException e) {
            throw KilnException.notFound("no kiln-shim state in " + dir + " (shim.pid is missing)");
        } catch (IOException | NumberFormatException e) {
            throw KilnException.corrupt("cannot read " + file + ": " + e.getMessage());
        }
    }

    /** True while the process {@link #pid} exists, is not a zombie, and is a kiln-shim (guards against pid reuse). */
    public boolean alive() {
        String stat;
        try {
            stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
        } catch (IOException e) {
            return false;
        }
        // "PID (COMM) STATE ...": COMM may itself hold spaces and parentheses, so take the last ')'
        int open = stat.indexOf('(');
        int close = stat.lastIndexOf(')');
        if (open < 0 || close < open || close + 2 >= stat.length()) return false;
        char state = stat.charAt(close + 2);
        return stat.substring(open + 1, close).equals("kiln-shim") && state != 'Z' && state != 'X';
    }

    /** The command's exit, once the shim has recorded it (after the command's output was drained and logged). */
    @Override
    public Optional<ExitStatus> exitStatus() {
        return readJson("exit.json").map(json -> new ExitStatus(json.path("exitCode").asInt(),
                json.path("signal").asInt(), Instant.parse(json.path("finishedAt").asText())));
    }

    /** The command's pid and start time, once the shim has started it. */
    public Optional<Started> started() {
        return readJson("started.json").map(json -> new Started(json.path("pid").asLong(),
                Instant.parse(json.path("startedAt").asText())));
    }

    /**
     * Waits up to {@code timeout} for the command's exit; empty if it is still running then. Throws {@link Gone} (a
     * {@link dev.kiln.isolation.RunningProcess.Gone}) if the shim died without recording an exit.
     */
    @Override
    public Optional<ExitStatus> await(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        // exit.json is seen the moment the shim renames it into place (a --rm run's end waits on this); the poll
        // is for a shim that dies without writing it
        try (FileWake wake = FileWake.on(dir)) {
            Duration poll = POLL;
            while (true) {
                Optional<ExitStatus> status = exitStatus();
                if (status.isPresent()) return status;
                if (!alive()) {
                    return Optional.of(exitStatus().orElseThrow(() -> new Gone("kiln-shim " + pid
                            + " died without recording an exit status (see " + dir.resolve("shim.log") + ")")));
                }
                if (System.nanoTime() - deadline > 0) return Optional.empty();
                pause(wake, deadline, poll);
                if (wake.watching()) {
                    poll = poll.multipliedBy(2).compareTo(POLL_IDLE) > 0 ? POLL_IDLE : poll.multipliedBy(2);
                }
            }
        }
    }

    /**
     * Waits up to {@code timeout} until the command was started (started.json; in container mode once the runtime's
     * start returned) or has exited; true if it was started.
     */
    public boolean awaitStarted(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        try (FileWake wake = FileWake.on(dir)) {
            while (true) {
                if (started().isPresent()) return true;
                if (exitStatus().isPresent() || !alive() || System.nanoTime() - deadline > 0) return false;
                pause(wake, deadline, POLL);
            }
        }
    }

    private void pause(FileWake wake, long deadline, Duration poll) {
        long left = deadline - System.nanoTime();
        try {
            wake.await(left < poll.toNanos() ? Duration.ofNanos(Math.max(left, 0)) : poll);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while waiting for " + dir, e);
        }
    }

    /** SIGKILL to the shim itself (not its command), if it still runs: for a shim that stopped doing its job. */
    public void kill() {
        if (alive()) {
            ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        }
    }

    /** Connects to the shim's attach socket. */
    @Override
    public AttachConnection attach() throws IOException {
        return AttachConnection.open(dir.resolve("attach.sock"));
    }

    private Optional<JsonNode> readJson(String name) {
        Path file = dir.resolve(name);
        // asked first: the watches above look many times before the file is there, and a NoSuchFileException is
        // two exceptions with their stack traces each time (most of what a watch cost kilnd)
        if (!Files.exists(file)) return Optional.empty();
        try {
            return Optional.of(JSON.readTree(Files.readAllBytes(file)));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException | RuntimeException e) {
            throw KilnException.corrupt("cannot read " + file + ": " + e.getMessage());
        }
    }

    private static void deleteQuietly(Path file) {
        if (file == null) return;
        try {
            Files.deleteIfExists(file);
        } catch (IOException ignored) {
            // a leftover temp file is harmless
        }
    }
}
