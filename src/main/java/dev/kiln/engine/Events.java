package dev.kiln.engine;

import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/** Life-cycle events (create, start, die, destroy, …) for {@code events} streams: a short history plus listeners. */
public final class Events {

    public record Event(Instant time, String type, String action, String id, String name, String image) {
    }

    private static final int HISTORY = 1000;
    private final Deque<Event> history = new ArrayDeque<>();
    private final List<Consumer<Event>> listeners = new CopyOnWriteArrayList<>();

    void emit(Sandbox s, String action) {
        Event e = new Event(Instant.now(), "container", action, s.id(), s.name(), s.image());
        synchronized (history) {
            history.addLast(e);
            if (history.size() > HISTORY) {
                history.removeFirst();
            }
        }
        listeners.forEach(l -> l.accept(e));
    }

    /** Replays events since {@code since} (null: none) and then delivers new ones until the returned handle closes. */
    public AutoCloseable subscribe(Instant since, Consumer<Event> listener) {
        synchronized (history) {
            if (since != null) {
                history.stream().filter(e -> !e.time().isBefore(since)).forEach(listener);
            }
            listeners.add(listener);
        }
        return () -> listeners.remove(listener);
    }
}
