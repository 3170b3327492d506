package dev.kiln.containerd;

import dev.kiln.containerd.wire.events.TaskOOM;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * containerd's TaskOOM ({@code /tasks/oom}) for a task whose memory cgroup ran out of memory and had the kernel kill a
 * process: CRI marks the container {@code OOMKilled} from it. The memory cgroup is the one the task's init is in
 * ({@code /proc/PID/cgroup}, as containerd's own OOM watchers load it): on this hybrid host runc puts the memory
 * controller on cgroup v1, whose {@code memory.oom_control} counts kills ({@code oom_kill N}); on a v2 host it is
 * {@code memory.events} ({@code oom_kill N}). The count is polled every 100 ms while the task runs and read once more
 * when the init exits, before TaskExit goes out (the kernel counts the kill before the process is gone), so the OOM
 * is reported, and reported first, even for a task that died of it at once. One event per new kill, as containerd's
 * watchers send one per notification.
 */
final class OomWatch {

    private static final Path CGROUP = Path.of("/sys/fs/cgroup");

    private record Watched(Path counter, long[] seen) {}

    private final EventPublisher events;
    private final ShimLog log;
    private final Map<String, Watched> watched = new ConcurrentHashMap<>();

    OomWatch(EventPublisher events, ShimLog log) {
        this.events = events;
        this.log = log;
        Thread.ofVirtual().name("oom-watch").start(() -> {
            while (true) {
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    return;
                }
                watched.keySet().forEach(this::check);
            }
        });
    }

    /** Watches the memory cgroup process {@code pid} of task {@code id} is in (nothing if it has none of its own). */
    void watch(String id, int pid) {
        Path counter = counter(pid);
        if (counter == null) return;
        watched.put(id, new Watched(counter, new long[] {kills(counter)}));
    }

    /** Reports kills since the last look, then stops watching (the init has exited). */
    void last(String id) {
        check(id);
        watched.remove(id);
    }

    private void check(String id) {
        Watched w = watched.get(id);
        if (w == null) return;
        synchronized (w) {
            long now = kills(w.counter());
            for (; w.seen()[0] < now; w.seen()[0]++) {
                log.line("task " + id + " ran out of memory (a process was killed)");
                events.publish("/tasks/oom", TaskOOM.newBuilder().setContainerId(id).build());
            }
        }
    }

    /** The file that counts OOM kills of the memory cgroup of {@code pid}, or null (host root, or unreadable). */
    static Path counter(int pid) {
        try {
            String v2 = null;
            for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "cgroup"))) {
                String[] f = line.split(":", 3);
                if (f.length < 3) continue;
                if (java.util.Arrays.asList(f[1].split(",")).contains("memory")) {
                    if (f[2].equals("/")) return null;
                    Path control = CGROUP.resolve("memory").resolve(f[2].substring(1)).resolve("memory.oom_control");
                    if (Files.exists(control)) return control;
                } else if (f[0].equals("0") && f[1].isEmpty()) {
                    v2 = f[2];
                }
            }
            if (v2 != null && !v2.equals("/")) {
                for (Path root : new Path[] {CGROUP, CGROUP.resolve("unified")}) {
                    Path events = root.resolve(v2.substring(1)).resolve("memory.events");
                    if (Files.exists(events)) return events;
                }
            }
        } catch (IOException gone) {
            // the process is gone: nothing to watch
        }
        return null;
    }

    /** The {@code oom_kill} count in a memory.oom_control (v1) or memory.events (v2) file; 0 once it is gone. */
    static long kills(Path counter) {
        try {
            for (String line : Files.readAllLines(counter)) {
                if (line.startsWith("oom_kill ")) return Long.parseLong(line.substring(9).strip());
            }
        } catch (IOException | NumberFormatException gone) {
            // the cgroup was removed
        }
        return 0;
    }
}
