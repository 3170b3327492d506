package dev.kiln.api.docker;

import dev.kiln.engine.Sandbox;
import dev.kiln.engine.Sandboxes;
import dev.kiln.isolation.SandboxTask;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * {@code docker run} attaches before it starts: the attach is answered (101) at once and parks here; the start that
 * follows starts the sandbox with {@code forAttach} (its task holds the process until the first attach client, so no
 * early output is lost), hands the task to every parked attach and returns only once they are connected (so a resize
 * sent right after the start cannot become the task's first client). One monitor per sandbox orders the two.
 */
final class AttachRendezvous {

    /** A parked attach: it receives the task, and reports once it is connected to it. */
    record Parked(CompletableFuture<SandboxTask> task, CompletableFuture<Void> connected) {
    }

    private static final long CONNECT_WAIT_MS = 5000;

    private final Sandboxes sandboxes;
    private final Map<String, List<Parked>> parked = new ConcurrentHashMap<>();
    private final Map<String, Object> locks = new ConcurrentHashMap<>();

    AttachRendezvous(Sandboxes sandboxes) {
        this.sandboxes = sandboxes;
    }

    /** Parks an attach to a sandbox that is not running; null if it runs (attach to its task directly). */
    Parked park(String id) {
        synchronized (lock(id)) {
            Sandbox s = sandboxes.get(id);
            if (s.running()) {
                return null;
            }
            Parked p = new Parked(new CompletableFuture<>(), new CompletableFuture<>());
            parked.computeIfAbsent(id, k -> new ArrayList<>()).add(p);
            return p;
        }
    }

    /** Starts the sandbox; parked attaches get its task (or the failure). False if it was already running. */
    boolean start(String id) {
        List<Parked> waiting;
        synchronized (lock(id)) {
            Sandbox s = sandboxes.get(id);
            if (s.running()) {
                return false;
            }
            List<Parked> all = parked.remove(id);
            waiting = all == null ? List.of() : all.stream().filter(p -> !p.task.isDone()).toList();
            try {
                SandboxTask task = sandboxes.start(id, !waiting.isEmpty());
                waiting.forEach(p -> p.task.complete(task));
            } catch (RuntimeException e) {
                waiting.forEach(p -> p.task.completeExceptionally(e));
                throw e;
            }
        }
        for (Parked p : waiting) {
            try {
                p.connected.get(CONNECT_WAIT_MS, TimeUnit.MILLISECONDS);
            } catch (Exception e) {
                // that client went away or is slow: the task starts the process after its own timeout
            }
        }
        return true;
    }

    void abandon(String id, Parked p) {
        p.task.cancel(false);
        p.connected.complete(null);
        synchronized (lock(id)) {
            List<Parked> list = parked.get(id);
            if (list != null) {
                list.remove(p);
            }
        }
    }

    private Object lock(String id) {
        return locks.computeIfAbsent(id, k -> new Object());
    }
}
