package dev.kiln.engine;

import java.util.function.BooleanSupplier;

/**
 * Wakes the waits for a sandbox's recorded exit and for its removal ({@code run --rm}'s answer waits for both) the
 * moment the store changes, where they polled it every 10–20 ms: on {@code kiln run --rm} that was up to 30 ms
 * between the removal and the client's exit code. A version number, so a change between a wait's check and its
 * sleep is not missed; still checked every 50 ms, for a change made by a path that does not signal.
 */
final class StoreChanges {
    private final Object lock = new Object();
    private long version;

    /** After the store recorded an exit or deleted a sandbox. */
    void changed() {
        synchronized (lock) {
            version++;
            lock.notifyAll();
        }
    }

    /** Returns once {@code done} holds or at {@code deadline} ({@link System#nanoTime}). */
    void await(BooleanSupplier done, long deadline) {
        while (true) {
            long seen;
            synchronized (lock) {
                seen = version;
            }
            if (done.getAsBoolean()) {
                return;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return;
            }
            synchronized (lock) {
                if (version == seen) {
                    try {
                        lock.wait(Math.max(1, Math.min(50, left / 1_000_000)));
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
            }
        }
    }
}
