package dev.kiln.rootfs;

import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Map;

import static java.nio.file.LinkOption.NOFOLLOW_LINKS;

/** A directory tree (or one file) written as a tar stream: what {@code docker cp} and {@code kiln cp} send. */
public final class TreeArchive {

    private TreeArchive() {
    }

    /**
     * A tar of {@code top} named {@code name}: directories walked without following symlinks (a symlink is archived
     * as one), regular files with their content, owners and modes as they are. Sockets, FIFOs and devices are left
     * out (opening a FIFO would block; Docker's archives of a root skip sockets too). Also what {@code kiln cp}
     * sends from the host.
     */
    public static void tar(Path top, String name, OutputStream out) throws IOException {
        tar(top, name, out, e -> true);
    }

    /**
     * As {@link #tar(Path, String, OutputStream)}, each entry first given to {@code edit}, which may change its owner
     * and mode ({@code COPY --chown/--chmod}) or leave it out by answering false (its children are still walked).
     */
    public static void tar(Path top, String name, OutputStream out,
                           java.util.function.Predicate<TarArchiveEntry> edit) throws IOException {
        java.io.BufferedOutputStream buffered = new java.io.BufferedOutputStream(out, 64 * 1024);
        TarArchiveOutputStream tar = new TarArchiveOutputStream(buffered);
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
        Files.walkFileTree(top, new SimpleFileVisitor<>() { // never follows symlinks
            @Override
            public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes a) throws IOException {
                add(tar, dir, entryName(top, dir, name) + "/", a, edit);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes a) throws IOException {
                add(tar, file, entryName(top, file, name), a, edit);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
                if (e instanceof java.nio.file.NoSuchFileException && !file.equals(top)) {
                    // listed but gone: a whiteout a read-only overlay over fuse2fs lists (no d_type to filter it by)
                    return FileVisitResult.CONTINUE;
                }
                throw e;
            }
        });
        tar.finish();
        buffered.flush(); // not closed: the caller owns out (the tar's flush does not reach through)
    }

    /**
     * The changes an overlay upper directory holds, as an OCI layer tar (what {@code kiln build} and {@code kiln
     * commit} store): overlayfs's whiteouts (character devices 0/0) become {@code .wh.NAME} entries, its opaque
     * directories ({@code trusted.overlay.opaque=y}) a {@code .wh..wh..opq} entry; names relative to the root, in
     * sorted order so the same changes give the same tar. Symlinks are archived as themselves, never followed.
     */
    public static void layer(Path upper, OutputStream out) throws IOException {
        layer(upper, out, (name, path) -> false);
    }

    /**
     * As {@link #layer(Path, OutputStream)}, leaving out what {@code leaveOut} names (given the relative name, like
     * {@code etc/hosts}, and the path): what the runtime made, not the workload.
     */
    public static void layer(Path upper, OutputStream out,
                             java.util.function.BiPredicate<String, Path> leaveOut) throws IOException {
        java.io.BufferedOutputStream buffered = new java.io.BufferedOutputStream(out, 64 * 1024);
        TarArchiveOutputStream tar = new TarArchiveOutputStream(buffered);
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
        layerEntries(tar, upper, "", leaveOut);
        tar.finish();
        buffered.flush();
    }

    private static void layerEntries(TarArchiveOutputStream tar, Path dir, String prefix,
                                     java.util.function.BiPredicate<String, Path> leaveOut) throws IOException {
        java.util.List<Path> children;
        try (var list = Files.list(dir)) {
            children = list.sorted().toList();
        }
        for (Path p : children) {
            String name = prefix + p.getFileName();
            BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class, NOFOLLOW_LINKS);
            if (leaveOut.test(name, p)) {
                continue;
            }
            if (a.isOther() && ((Number) Files.getAttribute(p, "unix:rdev", NOFOLLOW_LINKS)).longValue() == 0
                    && ((Integer) Files.getAttribute(p, "unix:mode", NOFOLLOW_LINKS) & 0170000) == 0020000) {
                TarArchiveEntry wh = new TarArchiveEntry(prefix + ".wh." + p.getFileName());
                wh.setModTime(a.lastModifiedTime());
                tar.putArchiveEntry(wh);
                tar.closeArchiveEntry();
            } else if (a.isDirectory()) {
                add(tar, p, name + "/", a, e -> true);
                if ("y".equals(OverlayXattr.opaque(p))) {
                    TarArchiveEntry opq = new TarArchiveEntry(name + "/.wh..wh..opq");
                    opq.setModTime(a.lastModifiedTime());
                    tar.putArchiveEntry(opq);
                    tar.closeArchiveEntry();
                }
                layerEntries(tar, p, name + "/", leaveOut);
            } else {
                add(tar, p, name, a, e -> true);
            }
        }
    }

    /** An empty regular file or directory (a mount point the runtime made). */
    public static boolean empty(Path p) throws IOException {
        BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class, NOFOLLOW_LINKS);
        if (a.isRegularFile()) {
            return a.size() == 0;
        }
        if (a.isDirectory()) {
            try (var list = Files.list(p)) {
                return list.findAny().isEmpty();
            }
        }
        return false;
    }

    private static String entryName(Path top, Path p, String name) {
        return p.equals(top) ? name : name + "/" + top.relativize(p);
    }

    private static void add(TarArchiveOutputStream tar, Path p, String name, BasicFileAttributes a,
                            java.util.function.Predicate<TarArchiveEntry> edit) throws IOException {
        TarArchiveEntry e;
        if (a.isSymbolicLink()) {
            e = new TarArchiveEntry(name, TarConstants.LF_SYMLINK);
            e.setLinkName(Files.readSymbolicLink(p).toString());
        } else if (a.isDirectory() || a.isRegularFile()) {
            e = new TarArchiveEntry(name);
            if (a.isRegularFile()) {
                e.setSize(a.size());
            }
        } else {
            return;
        }
        Map<String, Object> unix = Files.readAttributes(p, "unix:mode,uid,gid", NOFOLLOW_LINKS);
        e.setMode((Integer) unix.get("mode") & 07777 | (a.isDirectory() ? 0040000 : a.isSymbolicLink() ? 0120000
                : 0100000));
        e.setIds((Integer) unix.get("uid"), (Integer) unix.get("gid"));
        e.setModTime(a.lastModifiedTime());
        if (!edit.test(e)) {
            return;
        }
        tar.putArchiveEntry(e);
        if (a.isRegularFile()) {
            try (InputStream in = Files.newInputStream(p, NOFOLLOW_LINKS)) {
                // the size in the header is what the entry holds, even if the file changed meanwhile
                long copied = in.transferTo(new BoundedOutput(tar, a.size()));
                for (long i = copied; i < a.size(); i++) {
                    tar.write(0);
                }
            }
        }
        tar.closeArchiveEntry();
    }

    /** Passes at most {@code limit} bytes on, dropping the rest. */
    private static final class BoundedOutput extends OutputStream {
        private final OutputStream out;
        private long left;

        BoundedOutput(OutputStream out, long limit) {
            this.out = out;
            this.left = limit;
        }

        @Override
        public void write(int b) throws IOException {
            if (left > 0) {
                out.write(b);
                left--;
            }
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            int n = (int) Math.min(len, left);
            if (n > 0) {
                out.write(b, off, n);
                left -= n;
            }
        }
    }
}
