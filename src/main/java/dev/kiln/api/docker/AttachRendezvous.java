package dev.kiln.api.docker;

import dev.kiln.engine.Sandbox;
import dev.kiln.engine.Sandboxes;
import dev.kiln.isolation.shim.Shim;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@code docker run} attaches before it starts: the attach is answered (101) at once and parks here; the start that
 * follows starts the sandbox with {@code forAttach} (its shim holds the process until the first attach client, so no
 * early output is lost) and hands the shim to every parked attach. One monitor per sandbox orders the two.
 */
final class AttachRendezvous {

    private final Sandboxes sandboxes;
    private final Map<String, List<CompletableFuture<Shim>>> parked = new ConcurrentHashMap<>();
    private final Map<String, Object> locks = new ConcurrentHashMap<>();

    AttachRendezvous(Sandboxes sandboxes) {
        this.sandboxes = sandboxes;
    }

    /** The shim to attach to: now if the sandbox runs, else once it is started. */
    CompletableFuture<Shim> attach(String id) {
        synchronized (lock(id)) {
            Sandbox s = sandboxes.get(id);
            if (s.running()) {
                return CompletableFuture.completedFuture(sandboxes.shim(s));
            }
            CompletableFuture<Shim> f = new CompletableFuture<>();
            parked.computeIfAbsent(id, k -> new ArrayList<>()).add(f);
            return f;
        }
    }

    /** Starts the sandbox; parked attaches get its shim (or the failure). False if it was already running. */
    boolean start(String id) {
        synchronized (lock(id)) {
            Sandbox s = sandboxes.get(id);
            if (s.running()) {
                return false;
            }
            List<CompletableFuture<Shim>> waiting = parked.remove(id);
            waiting = waiting == null ? List.of() : waiting.stream().filter(f -> !f.isDone()).toList();
            try {
                Shim shim = sandboxes.start(id, !waiting.isEmpty());
                waiting.forEach(f -> f.complete(shim));
                return true;
            } catch (RuntimeException e) {
                waiting.forEach(f -> f.completeExceptionally(e));
                throw e;
            }
        }
    }

    void abandon(String id, CompletableFuture<Shim> f) {
        f.cancel(false);
        List<CompletableFuture<Shim>> list = parked.get(id);
        if (list != null) {
            synchronized (lock(id)) {
                list.remove(f);
            }
        }
    }

    private Object lock(String id) {
        return locks.computeIfAbsent(id, k -> new Object());
    }
}
