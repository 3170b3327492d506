package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.isolation.FileCopy;
import dev.kiln.isolation.SandboxTask;
import dev.kiln.rootfs.LayerApplier;
import dev.kiln.rootfs.RootPaths;
import dev.kiln.rootfs.TreeArchive;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.function.Consumer;
import java.util.function.Function;

import static java.nio.file.LinkOption.NOFOLLOW_LINKS;

/**
 * Files in and out of a sandbox from the host ({@code docker cp}, {@code kiln cp}): a tar of a path, a path's stat,
 * a tar extracted into a directory, for the isolations whose {@link FileCopy} allows it. kilnd works on the host side
 * of the sandbox's root tree, which its isolator gives ({@code Isolator.withRootTree}): the one the runtime uses while
 * the sandbox exists, or one made for the copy and released after.
 *
 * <p>The sandbox and its image are untrusted: every path is resolved inside the root ({@link RootPaths}), a tar
 * never leaves the root ({@link LayerApplier#extract}), the last component is never followed, and while kilnd
 * works the sandbox is held still — under its life-cycle lock (no start, exit or removal meanwhile) and, when it
 * runs, paused ({@link SandboxTask#pause}), so nothing inside can swap a checked directory for a symlink.
 */
public final class SandboxFiles {

    /** Docker's {@code X-Docker-Container-Path-Stat}: {@code mode} is Go's os.FileMode bits. */
    public record PathStat(String name, long size, long mode, String mtime, String linkTarget) {
    }

    private static final long GO_DIR = 1L << 31;
    private static final long GO_SYMLINK = 1L << 27;
    private static final long GO_NAMED_PIPE = 1L << 25;
    private static final long GO_SOCKET = 1L << 24;
    private static final long GO_SETUID = 1L << 23;
    private static final long GO_SETGID = 1L << 22;
    private static final long GO_CHAR_DEVICE = 1L << 21;
    private static final long GO_STICKY = 1L << 20;
    private static final long GO_DEVICE = 1L << 26;

    private final Sandboxes sandboxes;
    private final LayerApplier applier = new LayerApplier(new LayerApplier.Limits(64L << 30, false));

    SandboxFiles(Sandboxes sandboxes) {
        this.sandboxes = sandboxes;
    }

    /** The stat of {@code path} in the sandbox (its last component not followed). */
    public PathStat stat(String ref, String path) {
        Sandbox s = sandboxes.get(ref);
        if (s.running() && !s.paused() && sandboxes.isolation(s).copy().when() == FileCopy.When.WHEN_STOPPED) {
            return GuestCopy.stat(sandboxes, s, path); // docker cp's question before a copy in, asked of the sandbox
        }
        String name = s.name();
        return withRoot(ref, false, tree -> {
            Place p = place(s, tree, path);
            return stat(p.root(), resolve(p.root(), p.path(), name), path, name);
        });
    }

    /**
     * Writes a tar of {@code path} to {@code out} (its entries named from the path's last component, as Docker's
     * archive GET), after handing its stat to {@code head} (the response headers go before the body).
     */
    public void archive(String ref, String path, Consumer<PathStat> head, OutputStream out) {
        Sandbox s = sandboxes.get(ref);
        String name = s.name();
        withRoot(ref, false, tree -> {
            Place p = place(s, tree, path);
            Path root = p.root();
            RootPaths.Resolved r = resolve(root, p.path(), name);
            PathStat stat = stat(root, r, path, name);
            head.accept(stat);
            try {
                TreeArchive.tar(r.host(), stat.name().equals("/") ? "." : stat.name(), out);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return null;
        });
    }

    /**
     * Extracts the tar in {@code in} into directory {@code path} of the sandbox, refusing entries that leave it
     * (and, with {@code noOverwriteDirNonDir}, type changes of existing paths). Owners become root unless
     * {@code keepOwners}.
     */
    public void extract(String ref, String path, InputStream in, boolean noOverwriteDirNonDir, boolean keepOwners) {
        Sandbox s = sandboxes.get(ref);
        if (s.config().readOnly()) {
            throw KilnException.invalid("container rootfs is marked read-only: cannot copy into sandbox " + s.name());
        }
        if (s.running() && !s.paused() && sandboxes.isolation(s).copy().when() == FileCopy.When.WHEN_STOPPED) {
            GuestCopy.extract(sandboxes, s, path, in, keepOwners); // its root is not the host's to write while it runs
            return;
        }
        withRoot(ref, true, tree -> {
            Place p = place(s, tree, path);
            if (p.readOnly()) {
                throw KilnException.invalid("mounted volume is marked read-only: cannot copy into " + path
                        + " of sandbox " + s.name());
            }
            Path root = p.root();
            RootPaths.Resolved r = RootPaths.follow(root, resolve(root, p.path(), s.name()));
            BasicFileAttributes a = r.attributes();
            if (a == null) {
                throw notFound(path, s.name());
            }
            if (!a.isDirectory()) {
                throw KilnException.invalid("extraction point is not a directory: " + path);
            }
            String into = root.relativize(r.host()).toString();
            try {
                applier.extract(in, root, into, new LayerApplier.Extraction(noOverwriteDirNonDir, keepOwners, true));
            } catch (KilnException e) {
                // the client's archive is the client's mistake (400), not kiln's corruption (500)
                throw e.kind() == KilnException.Kind.CORRUPT ? KilnException.invalid(e.getMessage()) : e;
            }
            return null;
        });
    }

    /**
     * Runs {@code work} on the host side of the sandbox's root, held still: under the sandbox's life-cycle lock,
     * frozen while it runs, mounted for the time of the work when it is not mounted already.
     */
    private <T> T withRoot(String ref, boolean write, Function<Path, T> work) {
        return withRoot(ref, "docker cp", write, work);
    }

    /**
     * {@code docker export}: the sandbox's whole root filesystem (image + writable layer) as a tar, entries named
     * from {@code .}; held still as for a copy (a running container is frozen while its tree is read). Where the tree
     * is live elsewhere (a running vm's disk is its guest's), refused as a copy is, with the way through exec.
     */
    public void export(String ref, OutputStream out) {
        withRoot(ref, "export", false, root -> {
            try {
                TreeArchive.tar(root, ".", out);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return null;
        });
    }

    private <T> T withRoot(String ref, String what, boolean write, Function<Path, T> work) {
        Sandbox found = sandboxes.get(ref);
        String isolation = found.isolation();
        FileCopy copy = sandboxes.isolation(found).copy();
        if (copy.when() == FileCopy.When.NEVER) {
            throw KilnException.invalid(what + " is not supported for the " + isolation + " isolation: "
                    + copy.why() + " (use exec with tar, e.g. docker exec " + found.name() + " tar -c PATH)");
        }
        return sandboxes.locked(found.id(), () -> {
            Sandbox s = sandboxes.get(found.id());
            if (s.running() && copy.when() == FileCopy.When.WHEN_STOPPED) {
                throw KilnException.conflict(what + " is not supported for a running " + isolation + " sandbox: "
                        + copy.why() + " (stop " + s.name() + " first, or use docker exec " + s.name() + " tar)");
            }
            if (!s.running()) {
                return sandboxes.withRootTree(s, false, write, work);
            }
            // held still: the sandbox could otherwise swap a checked directory for a symlink to the host between
            // kiln's check and its use (CVE-2018-15664; Docker pauses the container the same way)
            if (s.paused()) { // paused by its user: already still, and stays paused
                return sandboxes.withRootTree(s, true, write, work);
            }
            SandboxTask task = sandboxes.task(s);
            task.pause();
            try {
                return sandboxes.withRootTree(s, true, write, work);
            } finally {
                task.resume();
            }
        });
    }

    /**
     * Where {@code path} lands: under a bind mount or volume of the sandbox, in that directory on the host, as its own
     * root (Docker's rule: {@code docker cp} into a volume's path writes into the volume, and out of it reads the
     * volume, whether the sandbox runs or not); else in the root tree. Matched on the path as written, with {@code .}
     * and {@code ..} taken lexically: a symlink in the root tree that leads into a mount's path is followed in the
     * root tree, beneath the mount.
     */
    private record Place(Path root, String path, boolean readOnly) {
    }

    private Place place(Sandbox s, Path tree, String path) {
        String wanted = lexical(path);
        dev.kiln.isolation.Mount best = null;
        for (dev.kiln.isolation.Mount m : sandboxes.spec(s).extraMounts()) {
            String target = lexical(m.target());
            boolean under = wanted.equals(target) || wanted.startsWith(target.equals("/") ? "/" : target + "/");
            if (m.type().equals("bind") && under && Files.isDirectory(Path.of(m.source()), NOFOLLOW_LINKS)
                    && (best == null || target.length() > lexical(best.target()).length())) {
                best = m;
            }
        }
        if (best == null) {
            return new Place(tree, path, false);
        }
        String rest = wanted.substring(lexical(best.target()).length());
        return new Place(Path.of(best.source()), rest.isEmpty() ? "/" : rest, best.options().contains("ro"));
    }

    /** {@code path} as an absolute path with no empty, {@code .} or {@code ..} elements ({@code ..} stops at /). */
    private static String lexical(String path) {
        java.util.Deque<String> parts = new java.util.ArrayDeque<>();
        for (String part : path.split("/")) {
            if (part.isEmpty() || part.equals(".")) {
                continue;
            }
            if (part.equals("..")) {
                parts.pollLast();
            } else {
                parts.addLast(part);
            }
        }
        return "/" + String.join("/", parts);
    }

    /** {@link RootPaths#resolve}, with Docker's words for a path that is not there. */
    private static RootPaths.Resolved resolve(Path root, String path, String sandbox) {
        String problem = dev.kiln.image.archive.EntryName.problem(path);
        if (problem != null) { // before the filesystem answers ENAMETOOLONG (a 500)
            throw KilnException.invalid("path " + KilnException.quote(path) + " " + problem);
        }
        try {
            return RootPaths.resolve(root, path);
        } catch (KilnException e) {
            throw e.kind() == KilnException.Kind.NOT_FOUND ? notFound(path, sandbox) : e;
        }
    }

    private static KilnException notFound(String path, String sandbox) {
        return KilnException.notFound("Could not find the file " + path + " in container " + sandbox);
    }

    private static PathStat stat(Path root, RootPaths.Resolved r, String requested, String sandbox) {
        BasicFileAttributes a = r.attributes();
        if (a == null) {
            throw notFound(requested, sandbox);
        }
        String trimmed = requested.replaceAll("/+$", "");
        String name = trimmed.isEmpty() ? "/" : trimmed.substring(trimmed.lastIndexOf('/') + 1);
        String linkTarget = a.isSymbolicLink() ? RootPaths.follow(root, r).inRoot() : "";
        return new PathStat(name, a.size(), goMode(r.host(), a), a.lastModifiedTime().toInstant().toString(),
                linkTarget);
    }

    /** Go's os.FileMode for a file: permission bits plus type and setuid/setgid/sticky flags in Go's positions. */
    private static long goMode(Path p, BasicFileAttributes a) {
        int unix;
        try {
            unix = (Integer) Files.getAttribute(p, "unix:mode", NOFOLLOW_LINKS);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return goMode(unix);
    }

    /** Go's os.FileMode for a Unix mode (type and permission bits). */
    static long goMode(int unix) {
        long mode = unix & 0777;
        mode |= (unix & 04000) != 0 ? GO_SETUID : 0;
        mode |= (unix & 02000) != 0 ? GO_SETGID : 0;
        mode |= (unix & 01000) != 0 ? GO_STICKY : 0;
        mode |= switch (unix & 0170000) {
            case 0040000 -> GO_DIR;
            case 0120000 -> GO_SYMLINK;
            case 0010000 -> GO_NAMED_PIPE;
            case 0140000 -> GO_SOCKET;
            case 0020000 -> GO_DEVICE | GO_CHAR_DEVICE;
            case 0060000 -> GO_DEVICE;
            default -> 0L;
        };
        return mode;
    }

}
