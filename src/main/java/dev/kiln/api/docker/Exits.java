package dev.kiln.api.docker;

import dev.kiln.KilnException;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Events;
import dev.kiln.engine.Sandbox;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Docker's wait conditions over the engine's events: the exit code is captured at the {@code die} event (before an
 * {@code --rm} sandbox's row is deleted), so {@code wait?condition=removed} still answers the code it exited with.
 */
final class Exits {

    private record Waiter(String id, boolean untilRemoved, CompletableFuture<Integer> result) {
    }

    private static final int REMEMBERED = 1000;

    private final Engine engine;
    private final List<Waiter> waiters = new CopyOnWriteArrayList<>();
    private final Map<String, Integer> lastExit = java.util.Collections.synchronizedMap(
            new LinkedHashMap<>(16, 0.75f, false) {
                @Override
                protected boolean removeEldestEntry(Map.Entry<String, Integer> eldest) {
                    return size() > REMEMBERED;
                }
            });
    private final Map<String, Boolean> removed = new ConcurrentHashMap<>();

    Exits(Engine engine) {
        this.engine = engine;
        engine.events().subscribe(null, this::onEvent);
    }

    private void onEvent(Events.Event e) {
        switch (e.action()) {
            case "die" -> {
                int code = exitCodeOf(e.id());
                lastExit.put(e.id(), code);
                waiters.stream().filter(w -> w.id.equals(e.id()) && !w.untilRemoved).forEach(w -> complete(w, code));
            }
            case "destroy" -> {
                int code = lastExit.getOrDefault(e.id(), 0);
                waiters.stream().filter(w -> w.id.equals(e.id()) && w.untilRemoved).forEach(w -> complete(w, code));
            }
            default -> {
            }
        }
    }

    private int exitCodeOf(String id) {
        try {
            Sandbox s = engine.sandboxes().get(id);
            return s.exitCode() == null ? 0 : s.exitCode();
        } catch (KilnException gone) {
            return lastExit.getOrDefault(id, 0);
        }
    }

    private void complete(Waiter w, int code) {
        waiters.remove(w);
        w.result.complete(code);
    }

    /** The exit code recorded at the sandbox's last exit, if this daemon saw it. */
    Integer last(String id) {
        return lastExit.get(id);
    }

    /**
     * Registers a wait before the caller checks the state (so no exit can slip between): {@code next-exit} and
     * {@code not-running} complete at the next {@code die}, {@code removed} at {@code destroy}.
     */
    CompletableFuture<Integer> register(String id, String condition) {
        boolean untilRemoved = switch (condition) {
            case "", "not-running", "next-exit" -> false;
            case "removed" -> true;
            default -> throw KilnException.invalid("invalid condition: \"" + condition
                    + "\" (use not-running, next-exit or removed)");
        };
        Waiter w = new Waiter(id, untilRemoved, new CompletableFuture<>());
        waiters.add(w);
        return w.result;
    }

    void cancel(CompletableFuture<Integer> result) {
        waiters.removeIf(w -> w.result == result);
    }
}
