package dev.kiln.rootfs;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static java.nio.file.LinkOption.NOFOLLOW_LINKS;

/**
 * The directory tree under one root, resolved the way the container will see it: component by component, absolute
 * symlink targets starting again at the root and {@code ..} stopping at it (openat2's RESOLVE_IN_ROOT, Go's
 * securejoin). Every directory this returns is a real directory inside the root, so host paths built on it never pass
 * through a symlink; callers must still never follow a symlink in the last component. Nothing else may change the
 * tree while a layer is applied (the image is not running), so path-based calls after a check are safe.
 */
final class RootTree {
    private static final int MAX_SYMLINKS = 40;

    private final Path root;
    /** Clean relative directory name to the real directory it resolved to; cleared when a dir or symlink goes. */
    private final Map<String, Path> dirs = new HashMap<>();
    /** Paths this layer wrote, with all their ancestors: what an opaque whiteout keeps. */
    private final Set<Path> written = new HashSet<>();

    RootTree(Path root) {
        this.root = root;
        dirs.put("", root);
    }

    Path root() {
        return root;
    }

    /**
     * The real directory for a clean relative name ({@code ""} is the root). Missing directories are created (0755)
     * when {@code create}, otherwise the result is null.
     */
    Path directory(String name, boolean create) throws IOException {
        int end = name.length();
        Path dir;
        while ((dir = dirs.get(name.substring(0, end))) == null) {
            end = Math.max(name.lastIndexOf('/', end - 1), 0);
        }
        while (end < name.length()) {
            int start = end == 0 ? 0 : end + 1;
            int slash = name.indexOf('/', start);
            end = slash < 0 ? name.length() : slash;
            dir = step(dir, name.substring(start, end), create);
            if (dir == null) {
                return null;
            }
            dirs.put(name.substring(0, end), dir);
        }
        return dir;
    }

    /** Records that {@code name} now resolves to the real directory {@code dir} (just created or checked). */
    void knownDirectory(String name, Path dir) {
        dirs.put(name, dir);
    }

    /** Resolves one name component below {@code dir}, following symlinks inside the root. */
    private Path step(Path dir, String component, boolean create) throws IOException {
        Deque<String> todo = new ArrayDeque<>(List.of(component));
        int links = 0;
        while (!todo.isEmpty()) {
            String c = todo.removeFirst();
            if (c.isEmpty() || c.equals(".")) {
                continue;
            }
            if (c.equals("..")) {
                dir = dir.equals(root) ? root : dir.getParent();
                continue;
            }
            Path next = dir.resolve(c);
            BasicFileAttributes attrs = lstat(next);
            if (attrs == null) {
                if (!create) {
                    return null;
                }
                Files.createDirectory(next);
                markWritten(next);
                dir = next;
            } else if (attrs.isSymbolicLink()) {
                if (++links > MAX_SYMLINKS) {
                    throw new Changeset.BadEntry("has too many levels of symbolic links in its path");
                }
                String target = Files.readSymbolicLink(next).toString();
                if (target.startsWith("/")) {
                    dir = root;
                }
                String[] parts = target.split("/");
                for (int i = parts.length - 1; i >= 0; i--) {
                    todo.addFirst(parts[i]);
                }
            } else if (attrs.isDirectory()) {
                dir = next;
            } else {
                throw new Changeset.BadEntry("has a parent that is not a directory (" + root.relativize(next) + ")");
            }
        }
        return dir;
    }

    /** True when every component from the root down to {@code path} is a real directory (no symlink). */
    boolean isRealDirectory(Path path, Set<Path> checked) throws IOException {
        Deque<Path> unchecked = new ArrayDeque<>();
        for (Path p = path; !p.equals(root) && !checked.contains(p); p = p.getParent()) {
            unchecked.addFirst(p);
        }
        for (Path p : unchecked) {
            BasicFileAttributes attrs = lstat(p);
            if (attrs == null || !attrs.isDirectory()) {
                return false;
            }
            checked.add(p);
        }
        return true;
    }

    void markWritten(Path path) {
        for (Path p = path; !p.equals(root) && written.add(p); p = p.getParent()) {
            // ancestors of a written path are written too
        }
    }

    /** A whiteout: removes {@code path} unless this layer wrote it (whiteouts only hide lower layers). */
    void removeLower(Path path) throws IOException {
        if (!written.contains(path)) {
            remove(path);
        }
    }

    /** An opaque whiteout: removes what lower layers put in {@code dir}, keeping what this layer wrote there. */
    void removeLowerChildren(Path dir) throws IOException {
        List<Path> children;
        try (var list = Files.list(dir)) {
            children = list.toList();
        }
        for (Path child : children) {
            if (!written.contains(child)) {
                remove(child);
            } else if (isDirectory(lstat(child))) {
                removeLowerChildren(child);
            }
        }
    }

    /** Removes whatever is at {@code path}, a directory with its contents, never following symlinks. */
    boolean remove(Path path) throws IOException {
        BasicFileAttributes attrs = lstat(path);
        if (attrs == null) {
            return false;
        }
        if (attrs.isDirectory()) {
            Files.walkFileTree(path, new SimpleFileVisitor<>() { // does not follow symlinks
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes a) throws IOException {
                    Files.delete(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                    if (e != null) {
                        throw e;
                    }
                    Files.delete(d);
                    return FileVisitResult.CONTINUE;
                }
            });
        } else {
            Files.delete(path);
        }
        if (attrs.isDirectory() || attrs.isSymbolicLink()) { // cached resolutions may have gone through it
            dirs.clear();
            dirs.put("", root);
        }
        return true;
    }

    static BasicFileAttributes lstat(Path path) throws IOException {
        try {
            return Files.readAttributes(path, BasicFileAttributes.class, NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    static boolean isDirectory(BasicFileAttributes attrs) {
        return attrs != null && attrs.isDirectory();
    }
}
