package dev.kiln.isolation.shim;

import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * Wakes a waiter on a shim's directory as soon as a file appears in it (the shim renames started.json and exit.json
 * into place), instead of at its next poll: on Linux the JDK's WatchService is inotify, read by one daemon thread for
 * every shim. A waiter still polls (it must notice a shim that died without a word); where no watch can be made it
 * only polls.
 */
final class FileWake implements AutoCloseable {

    private static final Hub HUB = Hub.start();

    private final WatchKey key;
    private final Set<Semaphore> set;
    private final Semaphore wake;

    private FileWake(WatchKey key, Set<Semaphore> set, Semaphore wake) {
        this.key = key;
        this.set = set;
        this.wake = wake;
    }

    /** Watches {@code dir} for new files until closed. */
    static FileWake on(Path dir) {
        if (HUB != null) {
            try {
                WatchKey key = dir.register(HUB.service, StandardWatchEventKinds.ENTRY_CREATE);
                Set<Semaphore> set = HUB.waiting.computeIfAbsent(key, k -> ConcurrentHashMap.newKeySet());
                Semaphore wake = new Semaphore(0);
                set.add(wake);
                return new FileWake(key, set, wake);
            } catch (IOException | UnsupportedOperationException e) {
                // the directory is gone, or no more inotify watches: poll
            }
        }
        return new FileWake(null, null, null);
    }

    /** Whether a new file wakes the waiter (else it only polls). */
    boolean watching() {
        return wake != null;
    }

    /** Returns when a file appeared in the directory since the last call, or after {@code timeout}. */
    void await(Duration timeout) throws InterruptedException {
        if (wake == null) {
            Thread.sleep(timeout);
        } else if (wake.tryAcquire(timeout.toNanos(), TimeUnit.NANOSECONDS)) {
            wake.drainPermits(); // one look covers every file that appeared meanwhile
        }
    }

    /**
     * The last waiter of a directory gives its inotify watch back (a waiter that registered at that very moment is
     * not woken any more, and notices by its poll).
     */
    @Override
    public void close() {
        if (set != null) {
            set.remove(wake);
            if (set.isEmpty() && HUB.waiting.remove(key, set)) {
                key.cancel();
            }
        }
    }

    /** The one watch service and the waiters per watched directory; a key whose directory went is forgotten. */
    private record Hub(WatchService service, Map<WatchKey, Set<Semaphore>> waiting) {
        static Hub start() {
            try {
                Hub hub = new Hub(FileSystems.getDefault().newWatchService(), new ConcurrentHashMap<>());
                Thread.ofPlatform().daemon().name("kiln-shim-files").start(hub::dispatch);
                return hub;
            } catch (IOException | UnsupportedOperationException e) {
                return null;
            }
        }

        private void dispatch() {
            while (true) {
                WatchKey key;
                try {
                    key = service.take();
                } catch (InterruptedException | ClosedWatchServiceException e) {
                    return;
                }
                key.pollEvents();
                Set<Semaphore> set = waiting.get(key);
                if (set != null) {
                    set.forEach(Semaphore::release);
                }
                if (!key.reset()) {
                    waiting.remove(key);
                }
            }
        }
    }
}
