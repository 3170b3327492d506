package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.isolation.AttachConnection;
import dev.kiln.isolation.Availability;
import dev.kiln.isolation.ExitStatus;
import dev.kiln.isolation.FileCopy;
import dev.kiln.isolation.Isolation;
import dev.kiln.isolation.Isolator;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.RunningProcess;
import dev.kiln.isolation.SandboxNetwork;
import dev.kiln.isolation.SandboxOptions;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.SandboxStats;
import dev.kiln.isolation.SandboxTask;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An isolator that runs nothing, for testing the engine's life-cycle in milliseconds: a sandbox's "process" is a few
 * files in its directory ({@code fake/run}: the run's mark; {@code fake/process}: present while the workload runs;
 * {@code fake/exit}: how it ended; {@code fake/monitor}: present while its monitor lives), so a second isolator over
 * the same directories re-adopts what the first started, as after a daemon restart. {@link #finish} ends a process
 * as if it exited by itself; {@link #killMonitor} kills its monitor, not the workload; {@link #loseExit} ends both
 * with no record. Signals end the process with 128 + the signal, except those it ignores; cleanup ends what is left.
 * An exec is the same files under {@code fake/execs/ID}, ended by {@link #finishExec}.
 */
final class FakeIsolator implements Isolator {

    static final String NAME = "fake";
    private static final AtomicLong RUNS = new AtomicLong(1_000_000);

    /** What the engine asked of it, in order ({@code create ID}, {@code start ID}, {@code cleanup ID files}, …). */
    final List<String> calls = new CopyOnWriteArrayList<>();
    /** Signals the fake processes ignore (a trap on TERM, say). */
    final Set<Integer> ignored = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** While set, each run's watcher (the engine's wait of years on it) sees no exit: a watcher that wakes late. */
    volatile boolean watchersAsleep;

    @Override
    public Isolation isolation() {
        return new Isolation(NAME, List.of("kiln-fake"), Set.of(SandboxNetwork.Mode.NONE),
                FileCopy.never("nothing is there"), Set.of(), Set.of());
    }

    @Override
    public Availability availability() {
        return Availability.AVAILABLE;
    }

    @Override
    public void check(SandboxOptions options) {
    }

    @Override
    public String runtime(String runtime) {
        return "fake-runtime";
    }

    @Override
    public void create(SandboxSpec spec) {
        calls.add("create " + spec.id());
        write(dir(spec).resolve("created"), "");
    }

    @Override
    public SandboxTask start(SandboxSpec spec, Duration waitAttach) {
        calls.add("start " + spec.id());
        Path dir = dir(spec);
        delete(dir.resolve("exit"));
        write(dir.resolve("run"), Long.toString(RUNS.incrementAndGet()));
        write(dir.resolve("process"), "");
        write(dir.resolve("monitor"), "");
        return adopt(spec);
    }

    @Override
    public SandboxTask adopt(SandboxSpec spec) {
        Path run = dir(spec).resolve("run");
        if (!Files.exists(run)) {
            throw KilnException.notFound("sandbox " + spec.id() + " never started");
        }
        return new Task(dir(spec), Long.parseLong(read(run).orElseThrow()));
    }

    @Override
    public boolean running(SandboxSpec spec) {
        return Files.exists(dir(spec).resolve("process"));
    }

    @Override
    public void cleanup(SandboxSpec spec, boolean removeFiles) {
        calls.add("cleanup " + spec.id() + (removeFiles ? " files" : ""));
        delete(dir(spec).resolve("process")); // whatever still runs is ended
    }

    /** Ends the sandbox's process with {@code code}, as if it exited by itself. */
    static void finish(Path sandboxDir, int code) {
        end(sandboxDir.resolve("fake"), code, 0);
    }

    /** Ends exec {@code execId} of the sandbox with {@code code}, as if it exited by itself. */
    static void finishExec(Path sandboxDir, String execId, int code) {
        end(execDir(sandboxDir.resolve("fake"), execId), code, 0);
    }

    private static Path execDir(Path fakeDir, String execId) {
        return fakeDir.resolve("execs").resolve(execId);
    }

    /** Kills the sandbox's monitor (not its workload), so it records no exit. */
    static void killMonitor(Path sandboxDir) {
        delete(sandboxDir.resolve("fake/monitor"));
    }

    /** The workload ends and its monitor dies, with no exit recorded. */
    static void loseExit(Path sandboxDir) {
        delete(sandboxDir.resolve("fake/process"));
        delete(sandboxDir.resolve("fake/monitor"));
    }

    private static void end(Path dir, int code, int signal) {
        delete(dir.resolve("process"));
        write(dir.resolve("exit"), code + " " + signal);
        delete(dir.resolve("monitor"));
    }

    private static Path dir(SandboxSpec spec) {
        return spec.dir().resolve("fake");
    }

    /** A process as its files tell: its exit, whether its monitor lives; the sandbox's main process or an exec. */
    private static class FakeProcess implements RunningProcess {
        final Path dir;

        FakeProcess(Path dir) {
            this.dir = dir;
        }

        @Override
        public Optional<ExitStatus> exitStatus() {
            return read(dir.resolve("exit")).map(s -> s.split(" ")).map(f -> new ExitStatus(Integer.parseInt(f[0]),
                    Integer.parseInt(f[1]), Instant.now()));
        }

        @Override
        public boolean alive() {
            return Files.exists(dir.resolve("monitor"));
        }

        @Override
        public Optional<ExitStatus> await(Duration timeout) {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                Optional<ExitStatus> status = exitStatus();
                if (status.isPresent()) {
                    return status;
                }
                if (!alive()) { // as kiln-shim: the exit is recorded before the monitor goes, so look once more
                    return Optional.of(exitStatus().orElseThrow(() -> new RunningProcess.Gone(
                            "the fake monitor of " + dir + " died without recording an exit")));
                }
                if (System.nanoTime() - deadline > 0) {
                    return Optional.empty();
                }
                try {
                    Thread.sleep(2);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new KilnException(KilnException.Kind.INTERNAL, "interrupted");
                }
            }
        }

        @Override
        public AttachConnection attach() {
            throw new UnsupportedOperationException("the fake isolator has no streams");
        }
    }

    private final class Task extends FakeProcess implements SandboxTask {
        private final long pid;

        Task(Path dir, long pid) {
            super(dir);
            this.pid = pid;
        }

        @Override
        public long pid() {
            return pid;
        }

        @Override
        public Optional<ExitStatus> await(Duration timeout) {
            while (watchersAsleep && timeout.toDays() > 365) {
                try {
                    Thread.sleep(2);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new KilnException(KilnException.Kind.INTERNAL, "interrupted");
                }
            }
            return super.await(timeout);
        }

        @Override
        public void kill(int signal) {
            calls.add("kill " + signal);
            if (exitStatus().isPresent()) {
                throw KilnException.conflict("not running");
            }
            if (!ignored.contains(signal) || signal == Signals.SIGKILL) {
                end(dir, 128 + signal, signal);
            }
        }

        @Override
        public RunningProcess exec(String execId, ProcessSpec process, Duration waitAttach) {
            if (!Files.exists(dir.resolve("process"))) {
                throw KilnException.conflict("not running");
            }
            calls.add("exec " + execId + " " + String.join(" ", process.args()));
            Path exec = execDir(dir, execId);
            write(exec.resolve("process"), "");
            write(exec.resolve("monitor"), "");
            return new FakeProcess(exec);
        }

        @Override
        public String top() {
            return "PID CMD\n1 fake\n";
        }

        @Override
        public SandboxStats stats() {
            return new SandboxStats(0, 0, 0, 1);
        }

        @Override
        public void killMonitor() {
            calls.add("kill monitor");
            delete(dir.resolve("monitor"));
        }

        @Override
        public void pause() {
            calls.add("pause");
        }

        @Override
        public void resume() {
            calls.add("resume");
        }

        @Override
        public boolean oomKilled() {
            return false;
        }
    }

    private static Optional<String> read(Path file) {
        try {
            return Optional.of(Files.readString(file).strip());
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void write(Path file, String content) {
        try {
            Files.createDirectories(file.getParent());
            Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            Files.writeString(tmp, content);
            Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void delete(Path file) {
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
