package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.isolation.ExitStatus;
import dev.kiln.isolation.RunningProcess;

import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The execs of the running sandboxes, from create to the removal of their sandbox, for both API faces (kiln's
 * {@code /v1/execs} and Docker's {@code /exec}); each face only translates its wire format. Execs live in the daemon's
 * memory, as Docker's do: a daemon restart forgets them (their processes end with their sandbox), so SQLite keeps none.
 */
public final class Execs {

    /** One exec: what to run, where, and its process once started. */
    public static final class Exec {
        private final String id;
        private final String sandboxId;
        private final ExecConfig config;
        private RunningProcess process; // guarded by this

        private Exec(String id, String sandboxId, ExecConfig config) {
            this.id = id;
            this.sandboxId = sandboxId;
            this.config = config;
        }

        public String id() {
            return id;
        }

        /** The full id of the sandbox it runs in. */
        public String sandboxId() {
            return sandboxId;
        }

        public ExecConfig config() {
            return config;
        }

        /** Its process; empty before {@link Execs#start}. */
        public synchronized Optional<RunningProcess> process() {
            return Optional.ofNullable(process);
        }

        /** Started and not yet ended. */
        public boolean running() {
            return process().map(p -> p.exitStatus().isEmpty()).orElse(false);
        }

        /** How it ended; empty before its start and while it runs. */
        public Optional<ExitStatus> exitStatus() {
            return process().flatMap(RunningProcess::exitStatus);
        }
    }

    private final Sandboxes sandboxes;
    private final Map<String, Exec> execs = new ConcurrentHashMap<>();

    Execs(Sandboxes sandboxes, Events events) {
        this.sandboxes = sandboxes;
        // as Docker: a removed container's execs are gone with it
        events.subscribe(null, e -> {
            if (e.action().equals("destroy")) {
                forget(e.id());
            }
        });
    }

    /** Registers an exec of {@code config} in the running sandbox {@code sandboxRef}; returns it, not started. */
    public Exec create(String sandboxRef, ExecConfig config) {
        if (config.cmd() == null || config.cmd().isEmpty()) {
            throw KilnException.invalid("exec needs a command");
        }
        RequestCheck.exec(config);
        Sandbox s = sandboxes.get(sandboxRef);
        if (!s.running()) {
            throw KilnException.conflict("sandbox " + s.name() + " is not running");
        }
        if (s.paused()) {
            throw KilnException.conflict("sandbox " + s.name() + " is paused, unpause it before exec");
        }
        // 64 hex characters, as Docker's exec ids
        String id = UUID.randomUUID().toString().replace("-", "") + UUID.randomUUID().toString().replace("-", "");
        Exec e = new Exec(id, s.id(), config);
        execs.put(id, e);
        return e;
    }

    /** The exec {@code id}; empty if there is none (never created, or its sandbox was removed). */
    public Optional<Exec> find(String id) {
        return Optional.ofNullable(execs.get(id));
    }

    /**
     * Starts exec {@code id}, once: a second start is refused. {@code detach} overrides the config's (Docker says
     * it at start, kiln at create). Detached, the process starts at once; otherwise it waits for its first attach.
     */
    public RunningProcess start(String id, boolean detach) {
        Exec e = find(id).orElseThrow(() -> KilnException.notFound("no such exec: " + id));
        synchronized (e) {
            if (e.process != null) {
                throw KilnException.conflict("exec " + id + " has already been started");
            }
            try {
                e.process = sandboxes.exec(e.sandboxId, e.id, e.config.detached(detach));
            } catch (KilnException failed) {
                if (failed.exitCode() != null) {
                    // a command that cannot run ends the exec with Docker's 126/127, as exec inspect shows it
                    e.process = new NeverRan(new ExitStatus(failed.exitCode(), 0, java.time.Instant.now()));
                }
                throw failed;
            }
            return e.process;
        }
    }

    /** The process of an exec whose command could not run: ended before it began. */
    private record NeverRan(ExitStatus status) implements RunningProcess {
        @Override
        public dev.kiln.isolation.AttachConnection attach() throws java.io.IOException {
            throw new java.io.IOException("the exec's command never ran");
        }

        @Override
        public Optional<ExitStatus> exitStatus() {
            return Optional.of(status);
        }

        @Override
        public Optional<ExitStatus> await(java.time.Duration timeout) {
            return Optional.of(status);
        }

        @Override
        public boolean alive() {
            return false;
        }
    }

    /** Forgets the execs of sandbox {@code sandboxId} (it was removed). */
    void forget(String sandboxId) {
        execs.values().removeIf(e -> e.sandboxId.equals(sandboxId));
    }
}
