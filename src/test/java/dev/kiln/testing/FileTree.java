package dev.kiln.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Predicate;

/**
 * A snapshot of a directory tree: relative path ({@code "."} for the root, {@code "a/b"} below it) to type,
 * permission bits (with setuid/setgid/sticky), owner, size, content hash, symlink target and hardlink grouping.
 * Symlinks are never followed. Modification times are left out unless asked for.
 */
public final class FileTree {
    public enum Type { FILE, DIR, SYMLINK, FIFO, OTHER }

    /**
     * One path. {@code mode} is the 12 permission bits (e.g. 04755); {@code size} and {@code sha256} only for
     * files; {@code hardlinkOf} is the first path (in sorted order) sharing this file's inode, or null;
     * {@code mtime} is null unless the tree was taken {@link #withMtimes}.
     */
    public record Entry(Type type, int mode, int uid, int gid, long size, String sha256, String linkTarget,
                        String hardlinkOf, FileTime mtime) {
        @Override
        public String toString() {
            StringBuilder s = new StringBuilder(type.name().toLowerCase())
                    .append(" ").append(String.format("%04o", mode)).append(" ").append(uid).append(":").append(gid);
            if (type == Type.FILE) s.append(" ").append(size).append("B sha256:").append(sha256, 0, 12);
            if (linkTarget != null) s.append(" -> ").append(linkTarget);
            if (hardlinkOf != null) s.append(" (hardlink of ").append(hardlinkOf).append(")");
            if (mtime != null) s.append(" mtime ").append(mtime);
            return s.toString();
        }
    }

    private final SortedMap<String, Entry> entries;

    private FileTree(SortedMap<String, Entry> entries) {
        this.entries = Collections.unmodifiableSortedMap(entries);
    }

    /** Snapshots {@code root} without modification times. */
    public static FileTree of(Path root) {
        return snapshot(root, false);
    }

    /** Snapshots {@code root} including modification times. */
    public static FileTree withMtimes(Path root) {
        return snapshot(root, true);
    }

    /** All entries, sorted by relative path. */
    public SortedMap<String, Entry> entries() {
        return entries;
    }

    /** The entry at a relative path (e.g. {@code "bin/sh"}), or null. */
    public Entry get(String relativePath) {
        return entries.get(relativePath);
    }

    public boolean contains(String relativePath) {
        return entries.containsKey(relativePath);
    }

    /** This tree restricted to the paths {@code keep} accepts (e.g. {@code p -> !p.equals(".")}). */
    public FileTree filter(Predicate<String> keep) {
        SortedMap<String, Entry> kept = new TreeMap<>();
        entries.forEach((path, entry) -> {
            if (keep.test(path)) kept.put(path, entry);
        });
        return new FileTree(kept);
    }

    /** Human-readable differences from this tree to {@code other}; empty when they are equal. */
    public List<String> diff(FileTree other) {
        List<String> out = new ArrayList<>();
        TreeSet<String> paths = new TreeSet<>(entries.keySet());
        paths.addAll(other.entries.keySet());
        for (String path : paths) {
            Entry mine = entries.get(path);
            Entry theirs = other.entries.get(path);
            if (theirs == null) {
                out.add("only in this:  " + path + " (" + mine + ")");
            } else if (mine == null) {
                out.add("only in other: " + path + " (" + theirs + ")");
            } else if (!mine.equals(theirs)) {
                out.add(path + ": " + mine + "  !=  " + theirs);
            }
        }
        return out;
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder();
        entries.forEach((path, entry) -> s.append(path).append("  ").append(entry).append('\n'));
        return s.toString();
    }

    private static FileTree snapshot(Path root, boolean mtimes) {
        Map<String, Map<String, Object>> attrsByPath = new TreeMap<>();
        Map<Object, String> firstPathByInode = new HashMap<>();
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
                    record(dir);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                    record(file);
                    return FileVisitResult.CONTINUE;
                }

                private void record(Path path) throws IOException {
                    String rel = root.equals(path) ? "." : root.relativize(path).toString();
                    attrsByPath.put(rel, Files.readAttributes(path, "unix:*", LinkOption.NOFOLLOW_LINKS));
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot snapshot " + root, e);
        }
        attrsByPath.forEach((rel, attrs) -> { // sorted, so the first path of an inode is the smallest
            if (typeOf((Integer) attrs.get("mode")) == Type.FILE && (Integer) attrs.get("nlink") > 1) {
                firstPathByInode.putIfAbsent(attrs.get("fileKey"), rel);
            }
        });
        SortedMap<String, Entry> entries = new TreeMap<>();
        attrsByPath.forEach((rel, attrs) -> entries.put(rel, entry(root, rel, attrs, firstPathByInode, mtimes)));
        return new FileTree(entries);
    }

    private static Entry entry(Path root, String rel, Map<String, Object> attrs, Map<Object, String> firstByInode,
                               boolean mtimes) {
        int rawMode = (Integer) attrs.get("mode");
        Type type = typeOf(rawMode);
        Path path = root.resolve(rel);
        String first = type == Type.FILE ? firstByInode.get(attrs.get("fileKey")) : null;
        try {
            return new Entry(type, rawMode & 07777, (Integer) attrs.get("uid"), (Integer) attrs.get("gid"),
                    type == Type.FILE ? (Long) attrs.get("size") : 0,
                    type == Type.FILE ? sha256(path) : null,
                    type == Type.SYMLINK ? Files.readSymbolicLink(path).toString() : null,
                    Objects.equals(first, rel) ? null : first,
                    mtimes ? (FileTime) attrs.get("lastModifiedTime") : null);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + path, e);
        }
    }

    private static Type typeOf(int mode) {
        return switch (mode & 0170000) {
            case 0100000 -> Type.FILE;
            case 0040000 -> Type.DIR;
            case 0120000 -> Type.SYMLINK;
            case 0010000 -> Type.FIFO;
            default -> Type.OTHER;
        };
    }

    private static String sha256(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file, LinkOption.NOFOLLOW_LINKS)) {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            byte[] buffer = new byte[64 * 1024];
            for (int n; (n = in.read(buffer)) > 0; ) digest.update(buffer, 0, n);
            return HexFormat.of().formatHex(digest.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Deletes a directory tree without following symlinks; a missing path is fine. */
    public static void deleteRecursively(Path root) {
        if (root == null || !Files.exists(root, LinkOption.NOFOLLOW_LINKS)) return;
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                    Files.deleteIfExists(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
                    if (e instanceof NoSuchFileException) return FileVisitResult.CONTINUE;
                    throw e;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path dir, IOException e) throws IOException {
                    if (e != null && !(e instanceof NoSuchFileException)) throw e;
                    Files.deleteIfExists(dir);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + root, e);
        }
    }
}
