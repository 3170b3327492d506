package dev.kiln.rootfs;

import dev.kiln.KilnException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * Paths a user gives inside a sandbox ({@code docker cp}), resolved on the host side of its root the way the sandbox
 * sees them, with {@link RootTree}'s rules: every directory on the way is resolved inside the root (an absolute
 * symlink starts again at the root, {@code ..} stops at it), so a symlink planted in the sandbox never leads out.
 * Callers hold the tree still (the sandbox frozen or not running) and never follow the last component.
 */
public final class RootPaths {
    private static final int MAX_SYMLINKS = 40;

    private RootPaths() {
    }

    /**
     * A path inside the root: {@code host} is where its last component is on the host (not followed: it may be a
     * symlink, or missing), {@code inRoot} the same place as the sandbox names it ({@code /etc/hostname}).
     */
    public record Resolved(Path host, String inRoot) {
        public boolean exists() {
            return RootPaths.lstat(host) != null;
        }

        public BasicFileAttributes attributes() {
            return RootPaths.lstat(host);
        }
    }

    /**
     * {@code path} (absolute or relative to the root) with its parent resolved inside {@code root} and its last
     * component as named. {@code .}, {@code ..} or nothing as the last component name the directory itself.
     * Throws NOT_FOUND when a parent is missing, INVALID when it is no directory or loops.
     */
    public static Resolved resolve(Path root, String path) {
        String clean = path.replaceAll("/+", "/").replaceAll("^/|/$", "");
        int slash = clean.lastIndexOf('/');
        String parent = slash < 0 ? "" : clean.substring(0, slash);
        String base = clean.substring(slash + 1);
        if (base.isEmpty() || base.equals(".") || base.equals("..")) {
            parent = clean;
            base = "";
        }
        RootTree tree = new RootTree(root);
        try {
            Path dir = tree.directory(parent, false);
            if (dir == null) {
                throw KilnException.notFound("no such file or directory: /" + clean);
            }
            Path host = base.isEmpty() ? dir : dir.resolve(base);
            return new Resolved(host, "/" + root.relativize(host));
        } catch (Changeset.BadEntry e) {
            throw KilnException.invalid("/" + clean + " " + e.getMessage().replace("has a parent", "has a component"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Follows {@code r}'s last component while it is a symlink, inside the root: what {@code docker cp -L} copies
     * and Docker's stat reports as {@code linkTarget}. The result may not exist.
     */
    public static Resolved follow(Path root, Resolved r) {
        for (int i = 0; i < MAX_SYMLINKS; i++) {
            BasicFileAttributes a = lstat(r.host());
            if (a == null || !a.isSymbolicLink()) {
                return r;
            }
            String target;
            try {
                target = Files.readSymbolicLink(r.host()).toString();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            Path dir = r.host().getParent();
            r = resolve(root, target.startsWith("/") ? target
                    : (root.equals(dir) ? "" : root.relativize(dir) + "/") + target);
        }
        throw KilnException.invalid(r.inRoot() + " has too many levels of symbolic links");
    }

    static BasicFileAttributes lstat(Path path) {
        try {
            return RootTree.lstat(path);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
