package dev.kiln.reliability;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * What sandboxes leave on the host, found from the outside (/proc, /sys/fs/cgroup, the runtimes' state dirs), and
 * the clean-up every reliability test runs at the end whether it passed or not: runtime containers deleted,
 * processes started under the test's roots killed (by pid), overlays under the root unmounted.
 */
final class Leftovers {
    private Leftovers() {
    }

    /** The runtimes' state directories under the run root, as kilnd configures them. */
    static final List<String> RUNTIMES = List.of("runc", "runsc");

    // ---- inspection ----

    /** Mount points at or below {@code root}, from /proc/self/mountinfo (octal escapes decoded). */
    static List<String> mountsUnder(Path root) {
        String prefix = root.toAbsolutePath().toString();
        List<String> found = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                String[] f = line.split(" ");
                String point = unescape(f[4]);
                if (point.equals(prefix) || point.startsWith(prefix + "/")) {
                    found.add(point);
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/self/mountinfo", e);
        }
        return found;
    }

    /** Entries in RUN_ROOT/runc and RUN_ROOT/runsc: containers the runtimes still know. */
    static List<String> runtimeState(Path runRoot) {
        List<String> found = new ArrayList<>();
        for (String runtime : RUNTIMES) {
            found.addAll(list(runRoot.resolve(runtime)).stream().map(p -> runtime + "/" + p.getFileName()).toList());
        }
        return found;
    }

    /** Directories under ROOT/sandboxes. */
    static List<String> sandboxDirs(Path root) {
        return list(root.resolve("sandboxes")).stream().map(p -> p.getFileName().toString()).toList();
    }

    /**
     * Cgroup directories of sandbox {@code id} (cgroupsPath {@code kiln/ID}) in every hierarchy, both at the
     * hierarchy's root and under this JVM's own cgroup there (where runtimes nest a relative path).
     */
    static List<Path> cgroupDirs(String id) {
        Set<Path> candidates = new LinkedHashSet<>();
        Path base = Path.of("/sys/fs/cgroup");
        for (Path hierarchy : list(base)) {
            candidates.add(hierarchy.resolve("kiln").resolve(id));
        }
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/cgroup"))) {
                String[] f = line.split(":", 3);
                String rel = f[2].startsWith("/") ? f[2].substring(1) : f[2];
                List<String> names = new ArrayList<>();
                if (f[1].isEmpty()) {
                    names.add("unified");
                } else {
                    for (String c : f[1].split(",")) {
                        names.add(c.startsWith("name=") ? c.substring(5) : c);
                    }
                    names.add(f[1]);
                }
                for (String n : names) {
                    candidates.add(base.resolve(n).resolve(rel).resolve("kiln").resolve(id));
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/self/cgroup", e);
        }
        return candidates.stream().filter(Files::isDirectory).toList();
    }

    /** Processes (other than this JVM) whose command line names a path under one of {@code roots}. */
    static List<ProcessHandle> processesUnder(Path... roots) {
        List<ProcessHandle> found = new ArrayList<>();
        long self = ProcessHandle.current().pid();
        try (DirectoryStream<Path> procs = Files.newDirectoryStream(Path.of("/proc"), p -> p.getFileName().toString()
                .chars().allMatch(Character::isDigit))) {
            for (Path proc : procs) {
                long pid = Long.parseLong(proc.getFileName().toString());
                if (pid == self) {
                    continue;
                }
                String cmdline;
                try {
                    cmdline = new String(Files.readAllBytes(proc.resolve("cmdline")), StandardCharsets.UTF_8)
                            .replace('\0', ' ');
                } catch (IOException gone) {
                    continue;
                }
                for (Path root : roots) {
                    if (cmdline.contains(root.toAbsolutePath().toString())) {
                        ProcessHandle.of(pid).ifPresent(found::add);
                        break;
                    }
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot list /proc", e);
        }
        return found;
    }

    /** A process's command line (NULs as spaces), "" once it is gone; for messages and matching. */
    static String cmdline(ProcessHandle p) {
        try {
            return p.pid() + ": " + new String(Files.readAllBytes(Path.of("/proc", Long.toString(p.pid()), "cmdline")),
                    StandardCharsets.UTF_8).replace('\0', ' ').strip();
        } catch (IOException gone) {
            return "";
        }
    }

    // ---- clean-up ----

    /**
     * Removes whatever a test's sandboxes left, in the order that lets each step succeed: the runtimes' containers
     * (force delete, which also removes their cgroups), processes still naming the roots (shims, gofers), then the
     * mounts under {@code root}, deepest first. Never throws: it runs after failures too.
     */
    static void cleanUp(Path root, Path runRoot) {
        for (String runtime : RUNTIMES) {
            Path state = runRoot.resolve(runtime);
            if (!Files.isDirectory(state)) {
                continue;
            }
            for (String id : containerIds(runtime, state)) {
                quietly(runtime, "--root", state.toString(), "delete", runtime.equals("runc") ? "-f" : "-force", id);
            }
        }
        for (ProcessHandle p : processesUnder(root, runRoot)) {
            p.destroyForcibly();
        }
        for (ProcessHandle p : processesUnder(root, runRoot)) {
            try {
                p.onExit().get(5, TimeUnit.SECONDS);
            } catch (Exception ignored) {
                // reported by the assertions of the test, if it matters
            }
        }
        List<String> mounts = new ArrayList<>(mountsUnder(root));
        mounts.sort(Comparator.comparingInt(String::length).reversed());
        for (String m : mounts) {
            quietly("umount", "-l", m);
        }
    }

    /** Container ids a runtime lists in {@code state} (its --root); runsc's state files are named ID_sandbox:ID.*. */
    private static List<String> containerIds(String runtime, Path state) {
        Set<String> ids = new LinkedHashSet<>();
        for (Path p : list(state)) {
            String name = p.getFileName().toString();
            int cut = name.indexOf("_sandbox:");
            ids.add(cut > 0 ? name.substring(0, cut) : name);
        }
        return List.copyOf(ids);
    }

    private static void quietly(String... argv) {
        try {
            Process p = new ProcessBuilder(argv).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        } catch (IOException e) {
            // a missing tool: nothing of its kind to clean
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static List<Path> list(Path dir) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    /** mountinfo escapes space, tab, newline and backslash as \ooo. */
    private static String unescape(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                try {
                    b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                    i += 3;
                    continue;
                } catch (NumberFormatException | StringIndexOutOfBoundsException ignored) {
                    // not an escape
                }
            }
            b.append(c);
        }
        return b.toString();
    }
}
