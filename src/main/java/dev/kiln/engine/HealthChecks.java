package dev.kiln.engine;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.image.Digest;
import dev.kiln.isolation.AttachConnection;
import dev.kiln.isolation.ExitStatus;
import dev.kiln.isolation.RunningProcess;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Docker's health checks, run by kilnd: for each run of a sandbox with a check (its own or its image's HEALTHCHECK),
 * the test as an exec every interval, its status {@code starting → healthy | unhealthy} after {@code retries}
 * failures in a row (failures in the start period do not count), the last five results kept, a
 * {@code health_status: STATUS} event on each change. A paused sandbox is not probed. Held in kilnd's memory, as
 * execs are: after a kilnd restart a running sandbox's health starts again from {@code starting}.
 */
public final class HealthChecks {
    private static final KilnLog LOG = KilnLog.of(HealthChecks.class);
    /** Docker keeps this much of a check's output, and this many results. */
    private static final int MAX_OUTPUT = 4096;
    private static final int MAX_LOG = 5;

    /** One check's result, as inspect's State.Health.Log shows it. */
    public record Result(Instant start, Instant end, int exitCode, String output) {
    }

    /** State.Health: {@code starting}, {@code healthy} or {@code unhealthy}. */
    public record Report(String status, int failingStreak, List<Result> log) {
    }

    private static final class State {
        final long runPid;
        String status = "starting";
        int failingStreak;
        final Deque<Result> log = new ArrayDeque<>();

        State(long runPid) {
            this.runPid = runPid;
        }

        synchronized Report report() {
            return new Report(status, failingStreak, List.copyOf(log));
        }
    }

    /** The image's HEALTHCHECK, as the image config stores it. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    private record ImageHealth(@JsonProperty("config") Runtime config) {
        @JsonIgnoreProperties(ignoreUnknown = true)
        record Runtime(@JsonProperty("Healthcheck") Check healthcheck) {
        }

        @JsonIgnoreProperties(ignoreUnknown = true)
        record Check(@JsonProperty("Test") List<String> test, @JsonProperty("Interval") long interval,
                     @JsonProperty("Timeout") long timeout, @JsonProperty("StartPeriod") long startPeriod,
                     @JsonProperty("Retries") int retries) {
        }
    }

    private final Sandboxes sandboxes;
    private final Images images;
    private final Events events;
    private final ExecutorService executor;
    private final Map<String, State> states = new ConcurrentHashMap<>();

    HealthChecks(Sandboxes sandboxes, Images images, Events events, ExecutorService executor) {
        this.sandboxes = sandboxes;
        this.images = images;
        this.events = events;
        this.executor = executor;
    }

    /** The check a sandbox runs: its own over its image's; empty when neither has one or it said NONE. */
    Optional<Healthcheck> check(Sandbox s) {
        Healthcheck own = Supervision.of(s.config()).healthcheck();
        Healthcheck image = null;
        try {
            ImageHealth h = images.store().readJson(Digest.parse(s.imageId()), ImageHealth.class);
            ImageHealth.Check c = h.config() == null ? null : h.config().healthcheck();
            if (c != null && c.test() != null && !c.test().isEmpty()) {
                image = new Healthcheck(c.test(), c.interval(), c.timeout(), c.startPeriod(), c.retries());
            }
        } catch (KilnException | IllegalArgumentException e) {
            // the image is gone (rmi -f) or its check is malformed: the sandbox's own, if any
        }
        Healthcheck effective = own == null ? image : own.over(image);
        return effective == null || effective.none() ? Optional.empty() : Optional.of(effective);
    }

    /** The health of the sandbox's current or last run; empty when it has no check or never ran with one. */
    Optional<Report> report(String id) {
        return Optional.ofNullable(states.get(id)).map(State::report);
    }

    void forget(String id) {
        states.remove(id);
    }

    /** Starts checking the run marked {@code runPid} of sandbox {@code id}, if it has a check. */
    void started(String id, long runPid) {
        Optional<Sandbox> s = sandboxes.byId(id);
        Optional<Healthcheck> check = s.flatMap(this::check);
        if (check.isEmpty()) {
            states.remove(id);
            return;
        }
        State state = new State(runPid);
        states.put(id, state);
        Instant started = Instant.now();
        executor.submit(() -> {
            try {
                loop(id, state, check.get(), started);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (RuntimeException e) {
                LOG.sandbox(id).warn("health checks stopped: " + e.getMessage(), e);
            }
        });
    }

    private void loop(String id, State state, Healthcheck check, Instant started) throws InterruptedException {
        while (true) {
            Thread.sleep(Duration.ofNanos(check.intervalOrDefault()));
            Optional<Sandbox> now = sandboxes.byId(id);
            if (now.isEmpty() || !now.get().running() || now.get().shimPid() != state.runPid
                    || states.get(id) != state) {
                return; // this run ended (its last health stays for inspect until the next run)
            }
            if (now.get().paused()) {
                continue;
            }
            Result r = probe(id, check);
            boolean inStartPeriod = Duration.between(started, r.start()).toNanos() < check.startPeriod();
            String before;
            String after;
            synchronized (state) {
                before = state.status;
                state.log.addLast(r);
                while (state.log.size() > MAX_LOG) {
                    state.log.removeFirst();
                }
                if (r.exitCode() == 0) {
                    state.failingStreak = 0;
                    state.status = "healthy";
                } else if (!inStartPeriod) {
                    state.failingStreak++;
                    if (state.failingStreak >= check.retriesOrDefault()) {
                        state.status = "unhealthy";
                    }
                }
                after = state.status;
            }
            if (!after.equals(before)) {
                events.emit(now.get(), "health_status: " + after);
            }
        }
    }

    /** One run of the test as an exec, bounded by the check's timeout (then killed, as Docker does). */
    private Result probe(String id, Healthcheck check) {
        Instant start = Instant.now();
        ExecConfig exec = new ExecConfig(check.command(), null, null, null, false, false, false);
        RunningProcess p;
        try {
            p = sandboxes.exec(id, "health-" + UUID.randomUUID(), exec);
        } catch (KilnException e) {
            return new Result(start, Instant.now(), e.exitCode() == null ? 1 : e.exitCode(), e.getMessage());
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        AttachConnection c;
        try {
            c = p.attach();
        } catch (IOException e) {
            return new Result(start, Instant.now(), 1, "cannot attach to the health check: " + e.getMessage());
        }
        Future<?> reading = executor.submit(() -> {
            AttachConnection.Frame f;
            while ((f = c.read()) != null && f.type() != AttachConnection.Frame.EXIT) {
                if (f.type() == AttachConnection.Frame.STDOUT || f.type() == AttachConnection.Frame.STDERR) {
                    synchronized (out) {
                        out.write(f.payload(), 0, Math.min(f.payload().length, Math.max(0, MAX_OUTPUT - out.size())));
                    }
                }
            }
            return null;
        });
        try {
            reading.get(check.timeoutOrDefault(), TimeUnit.NANOSECONDS);
            Optional<ExitStatus> status = p.await(Duration.ofSeconds(5));
            return new Result(start, Instant.now(), status.map(ExitStatus::exitCode).orElse(1), text(out));
        } catch (TimeoutException e) {
            try {
                c.signal(9);
            } catch (IOException | RuntimeException ignored) {
                // it ended meanwhile
            }
            return new Result(start, Instant.now(), -1, "Health check exceeded timeout ("
                    + Duration.ofNanos(check.timeoutOrDefault()).toMillis() / 1000.0 + "s)");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(start, Instant.now(), 1, "interrupted");
        } catch (java.util.concurrent.ExecutionException | RuntimeException e) {
            return new Result(start, Instant.now(), 1, "health check failed: " + e.getMessage());
        } finally {
            reading.cancel(true);
            try {
                c.close();
            } catch (IOException ignored) {
                // closed already
            }
        }
    }

    private static String text(ByteArrayOutputStream out) {
        synchronized (out) {
            return out.toString(StandardCharsets.UTF_8);
        }
    }
}
