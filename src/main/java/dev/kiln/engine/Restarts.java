package dev.kiln.engine;

import dev.kiln.KilnLog;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Restart policies ({@link RestartPolicy}) at work: after a run ends, kilnd starts the sandbox again when its policy
 * says so, after Docker's back-off (100 ms, doubling up to a minute, back to 100 ms after a run of 10 s or more);
 * when kilnd starts, {@code always} sandboxes and {@code unless-stopped} ones the user did not stop are started.
 * A stop, kill or removal by the user is remembered in a marker file in the sandbox's directory (it must outlive
 * kilnd, for {@code unless-stopped} after a reboot) and cleared by the user's next start.
 */
final class Restarts {
    private static final KilnLog LOG = KilnLog.of(Restarts.class);
    private static final long FIRST_DELAY_MS = 100;
    private static final long MAX_DELAY_MS = 60_000;
    private static final long RESET_AFTER_MS = 10_000;
    private static final String STOPPED_MARKER = "stopped-by-user";

    private final Function<Sandbox, Path> dirs;
    private final Consumer<String> policyStart;
    private final ExecutorService executor;
    private final Map<String, Long> delays = new ConcurrentHashMap<>();
    /** Sandboxes whose policy has a start scheduled (Docker's {@code restarting} state), by id. */
    private final java.util.Set<String> pending = ConcurrentHashMap.newKeySet();

    /** {@code policyStart} starts a sandbox by its policy (counted as a restart, not a user's start). */
    Restarts(Function<Sandbox, Path> dirs, Consumer<String> policyStart, ExecutorService executor) {
        this.dirs = dirs;
        this.policyStart = policyStart;
        this.executor = executor;
    }

    void stoppedByUser(Sandbox s) {
        if (s.config().autoRemove()) {
            // never restarted by a policy (create and update refuse one with --rm), so the marker would never be
            // read; and its file was written on every run --rm's removal, a moment before its directory went
            return;
        }
        try {
            Path dir = dirs.apply(s);
            if (Files.isDirectory(dir)) {
                Files.writeString(dir.resolve(STOPPED_MARKER), "");
            }
        } catch (IOException e) {
            LOG.sandbox(s.id()).warn("cannot record that the user stopped the sandbox: " + e.getMessage(), e);
        }
    }

    void startedByUser(Sandbox s) {
        delays.remove(s.id());
        Path marker = dirs.apply(s).resolve(STOPPED_MARKER);
        try {
            if (Files.exists(marker)) { // mostly none: deleteIfExists would throw and catch ENOENT inside the JDK
                Files.deleteIfExists(marker);
            }
        } catch (IOException e) {
            LOG.sandbox(s.id()).warn("cannot clear the sandbox's stop marker: " + e.getMessage(), e);
        }
    }

    /** Its policy will start it again after the back-off: Docker shows the container {@code restarting}. */
    boolean pending(String id) {
        return pending.contains(id);
    }

    boolean isStoppedByUser(Sandbox s) {
        return Files.exists(dirs.apply(s).resolve(STOPPED_MARKER));
    }

    /** After a run of {@code before} ended with {@code exitCode}: schedules its restart if its policy wants one. */
    void exited(Sandbox before, int exitCode, long finishedAt) {
        RestartPolicy policy = Supervision.of(before.config()).restart();
        if (before.config().autoRemove() || isStoppedByUser(before)
                || !policy.restartsAfter(exitCode, before.restarts())) {
            return;
        }
        long ran = finishedAt - before.started();
        long delay = ran >= RESET_AFTER_MS ? FIRST_DELAY_MS
                : delays.merge(before.id(), FIRST_DELAY_MS, (old, first) -> Math.min(old * 2, MAX_DELAY_MS));
        if (ran >= RESET_AFTER_MS) {
            delays.put(before.id(), FIRST_DELAY_MS);
        }
        schedule(before, delay);
    }

    /**
     * When kilnd starts: the sandboxes that were not running and whose policy starts them with the daemon; and, as
     * Docker's restore does, an {@code on-failure} one whose last run failed with retries left (its restart was in
     * its back-off when kilnd went down), unless the user stopped it.
     */
    void daemonStarted(List<Sandbox> stopped) {
        for (Sandbox s : stopped) {
            if (s.state() != SandboxState.EXITED || s.config().autoRemove()) {
                continue;
            }
            RestartPolicy policy = Supervision.of(s.config()).restart();
            boolean byUser = isStoppedByUser(s);
            if (policy.startsWithDaemon(byUser)) {
                startedByUser(s); // always: a stop by the user holds only until kilnd restarts (Docker's rule)
                schedule(s, 0);
            } else if (!byUser && policy.name().equals("on-failure") && s.exitCode() != null
                    && policy.restartsAfter(s.exitCode(), s.restarts())) {
                schedule(s, 0);
            }
        }
    }

    private void schedule(Sandbox s, long delayMs) {
        pending.add(s.id());
        executor.submit(() -> {
            try {
                Thread.sleep(delayMs);
                if (isStoppedByUser(s)) {
                    return; // stopped meanwhile (docker stop during the back-off)
                }
                policyStart.accept(s.id());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (RuntimeException e) {
                LOG.sandbox(s.id()).warn("restart policy: cannot start the sandbox again: " + e.getMessage(), e);
            } finally {
                pending.remove(s.id());
            }
        });
    }
}
