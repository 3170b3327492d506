package dev.kiln.isolation.oci;

import java.io.IOException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.FileSystemException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The cgroups of one sandbox, relative to kilnd's own cgroup in each hierarchy: {@code kiln/<id>}, which kiln owns,
 * and below it {@code kiln/<id>/runtime}, the runtime's (config.json's cgroupsPath, limits and processes).
 *
 * <p>Why two: the runtime runs in the foreground and removes its cgroup as the container exits, before kiln can ask
 * it anything; and on cgroup v1 an OOM kill is counted only in the victim's own memory cgroup (the kernel does not
 * propagate memory events up a v1 hierarchy). So on v1 kiln creates {@code kiln/<id>} in the memory hierarchy before
 * the runtime starts, gives it the memory limit less {@link #PARENT_MARGIN} (so when the sandbox runs out of memory it
 * is this cgroup that does, whatever the runtime's own accounting), and registers an {@link OomEventFd} on it; the
 * runtime's cgroup keeps the exact limit, so the container (runc's /sys/fs/cgroup bind) and gVisor's Sentry (which
 * sizes the guest's memory from it) still see what the user asked for. On cgroup v2 {@code memory.events} counts kills
 * in descendants, so the parent the runtime itself leaves behind ({@code kiln/<id>}) suffices.
 *
 * <p>The runtime creates {@code kiln/<id>} as an intermediate directory in every other hierarchy and never removes
 * it; {@link #remove} does, in all of them, once the runtime is gone.
 */
final class SandboxCgroup implements AutoCloseable {

    /**
     * The parent's limit is this much below the runtime's, so that its counter is the one that runs out: a charge
     * is checked leaf first, so with equal limits the runtime's cgroup could be the one out of memory, and the OOM
     * notification reaches only that cgroup and those below it. Current kernels also charge the runtime's cgroup's
     * own structures (about 256 KiB here) to the parent, which alone would do; the margin does not rely on it. One
     * page of the largest size Linux uses, so it survives the kernel rounding limits down to whole pages.
     */
    static final long PARENT_MARGIN = 64 << 10;

    private final OomEventFd oom;

    private SandboxCgroup(OomEventFd oom) {
        this.oom = oom;
    }

    /** kiln's cgroup for sandbox {@code id}. */
    static String parentPath(String id) {
        return "kiln/" + id;
    }

    /** The runtime's cgroup (config.json's {@code linux.cgroupsPath}). */
    static String runtimePath(String id) {
        return parentPath(id) + "/runtime";
    }

    /**
     * Before each start: on cgroup v1 creates kiln's memory cgroup for {@code id} with the limit (if any) and
     * watches it for OOM; on cgroup v2 there is nothing to prepare. Fails (IOException) only on v1.
     */
    static SandboxCgroup prepare(String id, long memoryLimit) throws IOException {
        var v1 = Cgroups.memoryV1(parentPath(id));
        if (v1.isEmpty()) {
            return new SandboxCgroup(null);
        }
        Path dir = v1.get();
        Files.createDirectories(dir);
        if (memoryLimit > 0) {
            long limit = memoryLimit > 2 * PARENT_MARGIN ? memoryLimit - PARENT_MARGIN : memoryLimit;
            Files.writeString(dir.resolve("memory.limit_in_bytes"), Long.toString(limit));
        }
        return new SandboxCgroup(OomEventFd.register(dir));
    }

    /** OOM events seen by kiln's own watch (v1); 0 when there is none (v2, or kilnd restarted since the start). */
    long oomEvents() {
        return oom == null ? 0 : oom.count();
    }

    @Override
    public void close() {
        if (oom != null) {
            oom.close();
        }
    }

    /**
     * Removes the sandbox's cgroups in every hierarchy, deepest first (rmdir only: a cgroup with tasks stays and is
     * reported). Retries briefly, since a runtime's last processes may still be exiting after {@code delete -f}.
     */
    static List<Path> remove(String id) {
        List<Path> dirs = new ArrayList<>();
        for (Cgroups.Hierarchy h : Cgroups.hierarchies()) {
            dirs.add(h.dir(runtimePath(id)));
            dirs.add(h.dir(parentPath(id)));
        }
        List<Path> left = new ArrayList<>();
        for (Path dir : dirs) {
            if (!rmdir(dir)) {
                left.add(dir);
            }
        }
        return left;
    }

    private static boolean rmdir(Path dir) {
        // Most hierarchies never had it. Files.isDirectory with NOFOLLOW_LINKS still throws a NoSuchFileException
        // (and fills its stack trace) inside, for each of them: ~30 per gVisor run --rm, on its exit path (JFR,
        // issue 17); without options it stats without an exception. Following a link changes nothing here: cgroupfs
        // has no symlinks (it has no symlink operation), and Files.delete below never follows one.
        if (!Files.isDirectory(dir)) {
            return true;
        }
        for (int attempt = 0; ; attempt++) {
            try {
                Files.delete(dir);
                return true;
            } catch (NoSuchFileException e) {
                return true;
            } catch (DirectoryNotEmptyException e) {
                return false; // a child cgroup kiln did not make: not ours to remove
            } catch (FileSystemException e) {
                if (attempt >= 12) { // EBUSY: tasks still in it; ~1.7 s in all
                    return false;
                }
            } catch (IOException e) {
                return false;
            }
            try {
                Thread.sleep(Math.min(200, 10L << Math.min(attempt, 5)));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
    }
}
