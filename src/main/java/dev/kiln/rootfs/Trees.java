package dev.kiln.rootfs;

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
 */
public final class Trees {
    /** Directories open at once, at most: deeper subtrees are moved up to the top directory. */
    static final int MAX_OPEN = 64;
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
        int parentFd = LibcCall.open(parent.toString(), LibcCall.O_RDONLY | LibcCall.O_DIRECTORY | LibcCall.O_CLOEXEC);
        if (parentFd == -ENOENT || parentFd == -ENOTDIR) return; // its parent is gone: so is it
        try (Walk walk = new Walk(root)) {
            if (parentFd < 0) throw walk.failure("open", parent.toString(), -parentFd);
            walk.remove(parentFd, name.toString().getBytes(StandardCharsets.UTF_8));
        } finally {
            if (parentFd >= 0) LibcCall.close(parentFd);
        }
    }

    /** One delete: the open directories, deepest last, and a buffer for their entries. */
    private static final class Walk implements AutoCloseable {
        private final Path root;
        private final Arena arena = Arena.ofConfined();
        private final MemorySegment buffer = arena.allocate(32 * 1024, 8);
        private final ArrayDeque<Directory> open = new ArrayDeque<>();
        private int moved;

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

        Walk(Path root) {
            this.root = root;
        }

        void remove(int parentFd, byte[] name) {
            if (unlinked(parentFd, name) || !enter(parentFd, name, 0)) return;
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
                int allowed = RESCANS + (open.isEmpty() ? moved : 0);
                if (e == ENOTEMPTY && top.rescans < allowed) {
                    enter(top.parentFd, top.name, top.rescans + 1);
                    continue;
                }
                throw failure("rmdir", top.name, e);
            }
        }

        /**
         * Unlinks {@code name} unless it is a directory: true when it is gone (or was never there), false for a
         * directory. A directory that refuses (a read-only one from an image, for a non-root kiln) is made writable.
         */
        private boolean unlinked(int dirfd, byte[] name) {
            int e = LibcCall.unlinkat(dirfd, name, 0);
            if ((e == EACCES || e == EPERM) && LibcCall.fchmod(dirfd, 0700) == 0) {
                e = LibcCall.unlinkat(dirfd, name, 0);
            }
            if (e == 0 || e == ENOENT) return true;
            if (e == EISDIR) return false;
            throw failure("unlink", name, e);
        }

        /** Opens the directory {@code name} and puts it on top; false when it is gone meanwhile. */
        private boolean enter(int parentFd, byte[] name, int rescans) {
            for (int tries = 0; tries < 8; tries++) {
                int fd = LibcCall.openat(parentFd, name, DIRECTORY);
                if (fd >= 0) {
                    open.addLast(new Directory(fd, parentFd, name, rescans));
                    return true;
                }
                if (fd == -ENOENT) return false;
                if (fd != -ENOTDIR && fd != -ELOOP) throw failure("open", name, -fd);
                // swapped for a link, a file or a fifo since it was seen: that is unlinked, never entered
                if (unlinked(parentFd, name)) return false;
            }
            throw failure("open", name, ENOTDIR);
        }

        /** The next entry of {@code d} to remove, null at its end. */
        private byte[] next(Directory d) {
            while (d.entries.isEmpty() && !d.ended) {
                int n = LibcCall.getdents64(d.fd, buffer);
                if (n < 0) throw failure("read", d.name, -n);
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
                if (e != EEXIST && e != ENOTEMPTY) throw failure("move up", name, e);
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
            for (Directory d : open) LibcCall.close(d.fd);
            open.clear();
            arena.close();
        }
    }
}
