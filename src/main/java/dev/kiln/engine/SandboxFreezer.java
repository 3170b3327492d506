package dev.kiln.engine;

import dev.kiln.KilnException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Holds every process of a running sandbox still while kilnd works on its root from the host (docker cp), through
 * the cgroup freezer of kiln's cgroup for the sandbox ({@code kiln/<id>}, below kilnd's own, where the runtime puts
 * the container: runc's processes, runsc's sandbox and gofer). Why: the sandbox is hostile and could swap a checked
 * directory for a symlink to the host between kiln's check and its use (CVE-2018-15664, which Docker fixed the same
 * way, by pausing the container during a copy). cgroup v1's freezer hierarchy where it is mounted, else cgroup v2's
 * {@code cgroup.freeze}. Failing to freeze refuses the copy: it never goes on unfrozen.
 */
final class SandboxFreezer implements AutoCloseable {
    private static final long FREEZE_TIMEOUT_MS = 5_000;

    private final Path control;
    private final boolean v1;

    private SandboxFreezer(Path control, boolean v1) {
        this.control = control;
        this.v1 = v1;
    }

    /** Freezes sandbox {@code id}'s cgroup and returns once the kernel reports it frozen; close thaws it. */
    static SandboxFreezer freeze(String id, String name) {
        SandboxFreezer f = locate(id).orElseThrow(() -> new KilnException(KilnException.Kind.UNAVAILABLE,
                "cannot hold sandbox " + name + " still for the copy: it has no freezer cgroup (stop it and copy "
                        + "again)"));
        f.write(f.v1 ? "FROZEN" : "1");
        long deadline = System.currentTimeMillis() + FREEZE_TIMEOUT_MS;
        while (!f.frozen()) {
            if (System.currentTimeMillis() > deadline) {
                f.close();
                throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot hold sandbox " + name
                        + " still for the copy: its processes did not freeze within 5 s (try again)");
            }
            sleep();
        }
        return f;
    }

    private static java.util.Optional<SandboxFreezer> locate(String id) {
        List<String> cgroups;
        List<String> mounts;
        try {
            cgroups = Files.readAllLines(Path.of("/proc/self/cgroup"));
            mounts = Files.readAllLines(Path.of("/proc/self/mountinfo"));
        } catch (IOException e) {
            return java.util.Optional.empty();
        }
        for (boolean v1 : new boolean[] {true, false}) {
            for (String line : cgroups) {
                String[] f = line.split(":", 3);
                if (f.length != 3 || !(v1 ? List.of(f[1].split(",")).contains("freezer") : f[0].equals("0"))) {
                    continue;
                }
                for (String mount : mounts) {
                    int dash = mount.indexOf(" - ");
                    String[] before = mount.substring(0, Math.max(dash, 0)).split(" ");
                    String[] after = mount.substring(dash + 3).split(" ");
                    if (dash < 0 || before.length < 5 || after.length < 3 || !(v1
                            ? after[0].equals("cgroup") && List.of(after[2].split(",")).contains("freezer")
                            : after[0].equals("cgroup2"))) {
                        continue;
                    }
                    // a hierarchy mounted from a sub-cgroup (inside a container) shows paths below its root
                    String own = f[2];
                    if (!before[3].equals("/") && own.startsWith(before[3])) {
                        own = own.substring(before[3].length());
                    }
                    Path dir = Path.of(before[4]).resolve(own.replaceFirst("^/", "")).resolve("kiln").resolve(id);
                    Path control = dir.resolve(v1 ? "freezer.state" : "cgroup.freeze");
                    if (Files.exists(control)) {
                        return java.util.Optional.of(new SandboxFreezer(control, v1));
                    }
                }
            }
        }
        return java.util.Optional.empty();
    }

    private boolean frozen() {
        try {
            return v1 ? Files.readString(control).strip().equals("FROZEN")
                    : Files.readString(control.resolveSibling("cgroup.events")).contains("frozen 1");
        } catch (IOException e) {
            return false;
        }
    }

    private void write(String value) {
        try {
            Files.writeString(control, value);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot freeze or thaw " + control.getParent()
                    + ": " + e.getMessage());
        }
    }

    private static void sleep() {
        try {
            Thread.sleep(5);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Thaws the sandbox. */
    @Override
    public void close() {
        write(v1 ? "THAWED" : "0");
    }
}
