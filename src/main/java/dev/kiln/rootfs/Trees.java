package dev.kiln.rootfs;

import dev.kiln.KilnLog;
import dev.kiln.LibcCall;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;

import static dev.kiln.LibcCall.EACCES;
import static dev.kiln.LibcCall.EEXIST;
import static dev.kiln.LibcCall.EISDIR;
import static dev.kiln.LibcCall.ELOOP;
import static dev.kiln.LibcCall.ENOENT;
import static dev.kiln.LibcCall.ENOTDIR;
import static dev.kiln.LibcCall.ENOTEMPTY;
import static dev.kiln.LibcCall.EPERM;

/**
 * Recursive delete that never follows a symbolic link, not even one put in place while it runs: the trees kiln deletes
 * may have been written by whom kiln isolates (an image's layers, a sandbox's writable layer, a volume, files a jailed
 * VMM made), and one that is still running could swap a directory for a link between a check and a use by path. So
 * every entry is removed by name relative to its already opened directory ({@code unlinkat}; {@code getdents64} to
 * list), a link or a file is only ever unlinked, and a directory is entered with {@code openat(O_DIRECTORY |
 * O_NOFOLLOW | O_NONBLOCK)}: a name swapped for a link, a file or a fifo since it was seen fails that open instead of
 * being followed, read or waited on (the JDK's {@code SecureDirectoryStream} opened without O_DIRECTORY, and a fifo
 * put there held kilnd's thread in open(2) for good; review of 2026-12-07).
 *
 * <p>The walk is a loop with at most {@link #MAX_OPEN} directories open at once, never a recursion: a sandbox can make
 * a tree deeper than any stack or descriptor limit (mkdir and cd in a loop), so a subtree below that depth is moved up
 * into the tree's top directory (one {@code renameat} inside the tree) and deleted from there.
 *
 * <p>The walk never crosses a mount: a directory on another mount than the directory the tree is in (the tree's top
 * itself bound over, a view a killed kilnd left mounted, a volume bound into it) is not entered, and the delete fails
 * naming it. The mount ids come from statx (Linux 5.8; an older kernel's delete does not tell mounts apart).
 *
 * <p>An entry that cannot be removed (an immutable file a container made, a mount) does not shield the rest: the walk
 * goes on with everything else and then fails with the first such error, so what stays is that entry and the
 * directories that hold it.
 */
public final class Trees {
    /** Directories open at once, at most: deeper subtrees are moved up to the top directory. */
    static final int MAX_OPEN = 64;
    private static final KilnLog LOG = KilnLog.of(Trees.class);
    /** How this JVM encodes file names (sun.jnu.encoding): a name that round-trips through it has these bytes. */
    private static final java.nio.charset.Charset FILE_NAMES = java.nio.charset.Charset.forName(
            System.getProperty("sun.jnu.encoding", "UTF-8"), StandardCharsets.UTF_8);
    /** How often a directory found not empty at its removal is read again (a writer still adding to it). */
    private static final int RESCANS = 8;
    private static final int DIRECTORY = LibcCall.O_RDONLY | LibcCall.O_DIRECTORY | LibcCall.O_NOFOLLOW
            | LibcCall.O_NONBLOCK | LibcCall.O_CLOEXEC;

    private Trees() {
    }

    /** Deletes {@code root} and all below it; nothing to do when it does not exist. */
    public static void delete(Path root) {
        Path name = root.getFileName();
        Path parent = root.toAbsolutePath().getParent();
        if (name == null || parent == null) {
            throw new UncheckedIOException(new IOException("refusing to delete " + root));
        }
        if (!root.resolveSibling(name.toString()).equals(root)) {
            // a name this JVM cannot give back as its bytes (not in its encoding): the walk names entries by bytes,
            // so the tree is renamed to one it can (the JDK's rename keeps the path's own bytes)
            Path renamed = root.resolveSibling(".kiln-delete-" + System.nanoTime());
            try {
                java.nio.file.Files.move(root, renamed);
            } catch (java.nio.file.NoSuchFileException gone) {
                return;
            } catch (IOException e) {
                throw new UncheckedIOException(new IOException("cannot delete " + root + ": " + e.getMessage(), e));
            }
            delete(renamed);
            return;
        }
        int parentFd = LibcCall.open(parent.toString(), LibcCall.O_RDONLY | LibcCall.O_DIRECTORY | LibcCall.O_CLOEXEC);
        if (parentFd == -ENOENT || parentFd == -ENOTDIR) return; // its parent is gone: so is it
        try (Walk walk = new Walk(root, parentFd)) {
            if (parentFd < 0) throw walk.failure("open", parent.toString(), -parentFd);
            walk.remove(parentFd, name.toString().getBytes(FILE_NAMES));
        } finally {
            if (parentFd >= 0) LibcCall.close(parentFd);
        }
    }

    /**
     * As {@link #delete}, for what an earlier kilnd left: a tree that cannot be deleted (whose names an image or a
     * sandbox chose) is logged and left, and never keeps kilnd from starting.
     */
    public static void deleteOrWarn(Path root) {
        try {
            delete(root);
        } catch (UncheckedIOException e) {
            LOG.warn("left " + root + ": " + e.getCause().getMessage());
        }
    }

    /** One delete: the open directories, deepest last, and a buffer for their entries. */
    private static final class Walk implements AutoCloseable {
        private final Path root;
        /** The directory the tree is in: not the tree's, so never made writable here. */
        private final int outerFd;
        private final Arena arena = Arena.ofConfined();
        private final MemorySegment buffer = arena.allocate(32 * 1024, 8);
        private final ArrayDeque<Directory> open = new ArrayDeque<>();
        private int moved;
        /** The mount the directory the tree is in is on; negative: not known (an old kernel), not checked. */
        private long mount = -1;
        /** The first entry that could not be removed: thrown once the walk has removed all else it could. */
        private UncheckedIOException failure;

        /** An open directory: its descriptor, its name in the one below, and the entries read but not yet removed. */
        private static final class Directory {
            final int fd;
            final int parentFd;
            final byte[] name;
            final int rescans;
            final ArrayDeque<byte[]> entries = new ArrayDeque<>();
            boolean ended;

            Directory(int fd, int parentFd, byte[] name, int rescans) {
                this.fd = fd;
                this.parentFd = parentFd;
                this.name = name;
                this.rescans = rescans;
            }
        }

        Walk(Path root, int outerFd) {
            this.root = root;
            this.outerFd = outerFd;
        }

        void remove(int parentFd, byte[] name) {
            mount = LibcCall.mountId(parentFd, new byte[0]);
            if (mount < 0 && mount != -LibcCall.EOPNOTSUPP) {
                throw failure("stat", String.valueOf(root.toAbsolutePath().getParent()), (int) -mount);
            }
            if (!unlinked(parentFd, name)) enter(parentFd, name, 0);
            walk();
            if (failure != null) throw failure;
        }

        private void walk() {
            while (!open.isEmpty()) {
                Directory top = open.peekLast();
                byte[] entry = next(top);
                if (entry != null) {
                    if (!unlinked(top.fd, entry)) {
                        if (open.size() < MAX_OPEN) enter(top.fd, entry, 0);
                        else moveUp(top.fd, entry);
                    }
                    continue;
                }
                open.removeLast();
                LibcCall.close(top.fd);
                int e = LibcCall.unlinkat(top.parentFd, top.name, LibcCall.AT_REMOVEDIR);
                if (e == 0 || e == ENOENT) continue;
                // not empty: a writer added to it, or (the top) subtrees were moved up into it
                // (a failure below: it holds what could not be removed, and is left as well, with no rescan)
                int allowed = RESCANS + (open.isEmpty() ? moved : 0);
                if (e == ENOTEMPTY && failure == null && top.rescans < allowed) {
                    enter(top.parentFd, top.name, top.rescans + 1);
                    continue;
                }
                failed("rmdir", top.name, e);
            }
        }

        /** Keeps the first failure, for the end of the walk. */
        private void failed(String what, byte[] name, int errno) {
            if (failure == null) failure = failure(what, name, errno);
        }

        /**
         * Unlinks {@code name} unless it is a directory: true when it is gone (or was never there), false for a
         * directory. A directory that refuses (a read-only one from an image, for a non-root kiln) is made writable.
         */
        private boolean unlinked(int dirfd, byte[] name) {
            int e = LibcCall.unlinkat(dirfd, name, 0);
            if ((e == EACCES || e == EPERM) && dirfd != outerFd && LibcCall.fchmod(dirfd, 0700) == 0) {
                e = LibcCall.unlinkat(dirfd, name, 0);
            }
            if (e == 0 || e == ENOENT) return true;
            if (e == EISDIR) return false;
            failed("unlink", name, e); // left: the walk goes on with the others
            return true;
        }

        /**
         * Opens the directory {@code name} and puts it on top; false when it is gone meanwhile. A directory on another
         * mount than the tree's top is refused before it is opened (the check asks the kernel's cache only, so a hung
         * FUSE server's mount point does not hold the walk).
         */
        private boolean enter(int parentFd, byte[] name, int rescans) {
            long on = LibcCall.mountId(parentFd, name);
            if (on == -ENOENT) return false;
            if (on < 0 && on != -LibcCall.EOPNOTSUPP) {
                failed("stat", name, (int) -on);
                return false;
            }
            if (mount >= 0 && on != mount) {
                if (failure == null) {
                    failure = new UncheckedIOException(new IOException("cannot delete " + root + ": " + new String(
                            name, StandardCharsets.UTF_8) + " is another mount (not crossed: unmount it)"));
                }
                return false;
            }
            for (int tries = 0; tries < 8; tries++) {
                int fd = LibcCall.openat(parentFd, name, DIRECTORY);
                if (fd >= 0) {
                    open.addLast(new Directory(fd, parentFd, name, rescans));
                    return true;
                }
                if (fd == -ENOENT) return false;
                if (fd != -ENOTDIR && fd != -ELOOP) {
                    failed("open", name, -fd);
                    return false;
                }
                // swapped for a link, a file or a fifo since it was seen: that is unlinked, never entered
                if (unlinked(parentFd, name)) return false;
            }
            failed("open", name, ENOTDIR);
            return false;
        }

        /** The next entry of {@code d} to remove, null at its end. */
        private byte[] next(Directory d) {
            while (d.entries.isEmpty() && !d.ended) {
                int n = LibcCall.getdents64(d.fd, buffer);
                if (n < 0) {
                    failed("read", d.name, -n);
                    d.entries.clear();
                    d.ended = true;
                    break;
                }
                if (n == 0) d.ended = true;
                // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name (NUL-terminated)
                for (int at = 0; at < n; ) {
                    int length = Short.toUnsignedInt(buffer.get(ValueLayout.JAVA_SHORT_UNALIGNED, at + 16));
                    byte[] name = name(at + 19, at + length);
                    if (!isDot(name)) d.entries.add(name);
                    at += length;
                }
            }
            return d.entries.poll();
        }

        private byte[] name(long from, long limit) {
            long end = from;
            while (end < limit && buffer.get(ValueLayout.JAVA_BYTE, end) != 0) end++;
            return buffer.asSlice(from, end - from).toArray(ValueLayout.JAVA_BYTE);
        }

        private static boolean isDot(byte[] name) {
            return name.length == 1 && name[0] == '.' || name.length == 2 && name[0] == '.' && name[1] == '.';
        }

        /** Moves the directory {@code name} of {@code dirfd}, too deep to enter, up into the tree's top directory. */
        private void moveUp(int dirfd, byte[] name) {
            int top = open.peekFirst().fd;
            while (true) {
                byte[] to = (".kiln-deep-" + ++moved).getBytes(StandardCharsets.UTF_8);
                int e = LibcCall.renameat(dirfd, name, top, to);
                if (e == 0 || e == ENOENT) return;
                // the name is taken (the tree's top holds what the image or the sandbox put there): the next one
                if (e != EEXIST && e != ENOTEMPTY && e != ENOTDIR && e != EISDIR) {
                    failed("move up", name, e);
                    return;
                }
            }
        }

        UncheckedIOException failure(String what, byte[] name, int errno) {
            return failure(what, new String(name, StandardCharsets.UTF_8), errno);
        }

        UncheckedIOException failure(String what, String name, int errno) {
            return new UncheckedIOException(new IOException("cannot delete " + root + ": " + what + " " + name + ": "
                    + LibcCall.describe(errno)));
        }

        @Override
        public void close() {
            for (Directory d : open) {
                try {
                    LibcCall.close(d.fd);
                } catch (IllegalStateException e) {
                    // EIO/EINTR from close: the descriptor is released all the same; the others still are closed
                }
            }
            open.clear();
            arena.close();
        }
    }
}
