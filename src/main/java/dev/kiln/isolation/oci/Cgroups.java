package dev.kiln.isolation.oci;

import dev.kiln.isolation.SandboxStats;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Reads a sandbox's cgroup (cgroupfs layout). The runtime resolves kiln's relative cgroups path against the cgroup
 * of the process that started it, which inherits kilnd's own; so the files live under kilnd's cgroup per controller.
 * Missing files read as 0: a sandbox whose runtime keeps its own accounting (gVisor's Sentry) shows what the host sees.
 */
final class Cgroups {
    private Cgroups() {
    }

    private static final Path ROOT = Path.of("/sys/fs/cgroup");

    static SandboxStats stats(String relative) {
        if (Host.current().unifiedCgroups()) {
            Path dir = dir("", relative);
            long usageUsec = field(read(dir.resolve("cpu.stat")), "usage_usec");
            String max = read(dir.resolve("memory.max")).strip();
            return new SandboxStats(usageUsec * 1000, number(read(dir.resolve("memory.current"))),
                    max.equals("max") ? 0 : number(max), number(read(dir.resolve("pids.current"))));
        }
        long limit = number(read(dir("memory", relative).resolve("memory.limit_in_bytes")));
        return new SandboxStats(number(read(dir("cpuacct", relative).resolve("cpuacct.usage"))),
                number(read(dir("memory", relative).resolve("memory.usage_in_bytes"))),
                limit >= (1L << 62) ? 0 : limit, number(read(dir("pids", relative).resolve("pids.current"))));
    }

    /** How many times the kernel's OOM killer struck in the sandbox's memory cgroup. */
    static long oomKills(String relative) {
        if (Host.current().unifiedCgroups()) {
            return field(read(dir("", relative).resolve("memory.events")), "oom_kill");
        }
        return field(read(dir("memory", relative).resolve("memory.oom_control")), "oom_kill");
    }

    /** {@code /sys/fs/cgroup/CONTROLLER/<kilnd's cgroup>/RELATIVE}. */
    private static Path dir(String controller, String relative) {
        String own = ownCgroup(controller).orElse("/");
        Path base = controller.isEmpty() ? ROOT : ROOT.resolve(controller);
        return base.resolve(own.substring(1)).resolve(relative);
    }

    private static Optional<String> ownCgroup(String controller) {
        try {
            List<String> lines = Files.readAllLines(Path.of("/proc/self/cgroup"));
            for (String line : lines) {
                String[] f = line.split(":", 3);
                if (f.length == 3 && (controller.isEmpty() ? f[0].equals("0")
                        : List.of(f[1].split(",")).contains(controller))) {
                    return Optional.of(f[2]);
                }
            }
        } catch (IOException e) {
            // no /proc: the root cgroup is the best guess
        }
        return Optional.empty();
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            return "";
        }
    }

    private static long number(String s) {
        try {
            return Long.parseLong(s.strip());
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    private static long field(String text, String name) {
        return text.lines().map(l -> l.split("\\s+")).filter(f -> f.length == 2 && f[0].equals(name))
                .mapToLong(f -> number(f[1])).findFirst().orElse(0);
    }
}
