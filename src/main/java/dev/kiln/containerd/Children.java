package dev.kiln.containerd;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The shim is a child subreaper: the container's init, exec'd processes and the runtime's helpers (runsc's sandbox
 * and gofer) are re-parented to it when {@code runc create}/{@code exec --detach} exit. This reaps those orphans and
 * hands each one's exit to whoever waits for its pid, while leaving alone the processes Java itself started (the
 * JDK reaps those by pid; reaping one here would lose its exit code). Processes are started through {@link #start}
 * so the two sets never mix: a zombie is looked at only under the lock that also covers a start.
 */
final class Children {
    private Children() {
    }

    record Exit(int status, Instant at) {}

    private static final Object LOCK = new Object();
    private static final Set<Long> JAVA_CHILDREN = ConcurrentHashMap.newKeySet();
    private static final Map<Integer, CompletableFuture<Exit>> EXITS = new ConcurrentHashMap<>();
    private static final Path TASKS = Path.of("/proc/self/task");

    static Process start(ProcessBuilder pb) throws IOException {
        synchronized (LOCK) {
            Process p = pb.start();
            long pid = p.pid();
            JAVA_CHILDREN.add(pid);
            p.onExit().thenRun(() -> JAVA_CHILDREN.remove(pid));
            return p;
        }
    }

    /** The exit of re-parented process {@code pid}, once reaped (status as a shell reports it). */
    static CompletableFuture<Exit> exitOf(int pid) {
        return EXITS.computeIfAbsent(pid, k -> new CompletableFuture<>());
    }

    /** Starts the reaper: becomes a subreaper and reaps orphans every 20 ms. */
    static void reap() {
        Libc.becomeSubreaper();
        Thread.ofPlatform().daemon().name("reaper").start(() -> {
            while (true) {
                synchronized (LOCK) {
                    for (int pid : zombies()) {
                        if (JAVA_CHILDREN.contains((long) pid)) continue;
                        int status = Libc.waitFor(pid);
                        if (status >= 0) exitOf(pid).complete(new Exit(status, Instant.now()));
                    }
                }
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
    }

    /** This process's children (over all its threads) that have ended and wait to be reaped. */
    private static java.util.List<Integer> zombies() {
        java.util.List<Integer> found = new java.util.ArrayList<>();
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(TASKS)) {
            for (Path task : tasks) {
                String children;
                try {
                    children = Files.readString(task.resolve("children")).strip();
                } catch (IOException gone) {
                    continue;
                }
                if (children.isEmpty()) continue;
                for (String s : children.split("\\s+")) {
                    int pid = Integer.parseInt(s);
                    try {
                        String stat = Files.readString(Path.of("/proc", s, "stat"));
                        int close = stat.lastIndexOf(')');
                        if (close > 0 && close + 2 < stat.length() && stat.charAt(close + 2) == 'Z') found.add(pid);
                    } catch (IOException gone) {
                        // reaped meanwhile
                    }
                }
            }
        } catch (IOException e) {
            // /proc unreadable: nothing to reap this round
        }
        return found;
    }
}
