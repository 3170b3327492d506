package dev.kiln.isolation.oci;

import dev.kiln.isolation.SandboxStats;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;

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

    /**
     * How many times the kernel's OOM killer struck in {@code relative} or below it, when the kernel can tell:
     * cgroup v2's {@code memory.events} counts kills in descendants too; v1's {@code memory.oom_control} counts only
     * kills of tasks in that very cgroup (see {@link SandboxCgroup} for how kiln learns of the others on v1).
     */
    static long oomKills(String relative) {
        Optional<Path> v1 = memoryV1(relative);
        if (v1.isPresent()) {
            return field(read(v1.get().resolve("memory.oom_control")), "oom_kill");
        }
        return field(read(dir("", relative).resolve("memory.events")), "oom_kill");
    }

    /** {@code relative}'s directory in the cgroup v1 memory hierarchy; empty if memory is on cgroup v2 here. */
    static Optional<Path> memoryV1(String relative) {
        return hierarchies().stream().filter(h -> h.controllers().contains("memory")).findFirst()
                .map(h -> h.dir(relative));
    }

    /**
     * A mounted cgroup hierarchy (v1 with its controllers or named {@code name=...}, or the v2 one with none),
     * with this process's cgroup in it, where runtimes nest a relative cgroups path.
     */
    record Hierarchy(Path mountPoint, Set<String> controllers, String own) {
        Path dir(String relative) {
            return mountPoint.resolve(own.startsWith("/") ? own.substring(1) : own).resolve(relative);
        }
    }

    /** Every cgroup hierarchy mounted here (once each), from /proc/self/cgroup and /proc/self/mountinfo. */
    static List<Hierarchy> hierarchies() {
        List<Hierarchy> found = new ArrayList<>();
        List<String> cgroups;
        List<String> mounts;
        try {
            cgroups = Files.readAllLines(Path.of("/proc/self/cgroup"));
            mounts = dev.kiln.rootfs.Mounts.mountinfo();
        } catch (IOException e) {
            return found;
        }
        for (String line : cgroups) {
            String[] f = line.split(":", 3);
            if (f.length != 3) {
                continue;
            }
            Set<String> names = f[1].isEmpty() ? Set.of() : Set.of(f[1].split(","));
            for (String mount : mounts) {
                int dash = mount.indexOf(" - ");
                if (dash < 0) {
                    continue;
                }
                String[] before = mount.substring(0, dash).split(" ");
                String[] after = mount.substring(dash + 3).split(" ");
                if (before.length < 5 || after.length < 3) {
                    continue;
                }
                boolean matches = names.isEmpty() ? after[0].equals("cgroup2")
                        : after[0].equals("cgroup") && Set.of(after[2].split(",")).containsAll(names);
                if (!matches) {
                    continue;
                }
                // a hierarchy mounted from a sub-cgroup (inside a container) shows paths below its root
                String root = before[3];
                String own = f[2];
                if (!root.equals("/") && (own.equals(root) || own.startsWith(root + "/"))) {
                    own = own.substring(root.length());
                }
                found.add(new Hierarchy(Path.of(before[4]), names, own.isEmpty() ? "/" : own));
                break;
            }
        }
        return found;
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
