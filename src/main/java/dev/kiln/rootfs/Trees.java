package dev.kiln.rootfs;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SecureDirectoryStream;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;

/**
 * Recursive delete that never follows a symbolic link, not even one put in place while it runs: the trees kiln deletes
 * may have been written by whom kiln isolates (an image's layers, a sandbox's writable layer, a volume, files a jailed
 * VMM made), and one that is still running could swap a directory for a link between a check and a use by path. So
 * every entry is read, opened and removed by name relative to its already opened directory
 * ({@link SecureDirectoryStream}: openat, fstatat, unlinkat), and a link is only ever unlinked.
 */
public final class Trees {
    private static final LinkOption[] NO_FOLLOW = {LinkOption.NOFOLLOW_LINKS};

    private Trees() {
    }

    public static void delete(Path root) {
        try {
            Path name = root.getFileName();
            Path parent = root.toAbsolutePath().getParent();
            if (name == null || parent == null) throw new IOException("refusing to delete " + root);
            try (DirectoryStream<Path> stream = Files.newDirectoryStream(parent)) {
                if (!(stream instanceof SecureDirectoryStream<Path> secure)) {
                    throw new IOException("this platform cannot delete " + root + " without following links");
                }
                remove(secure, name);
            } catch (NoSuchFileException e) {
                // its parent is gone: so is it
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Removes the entry {@code name} of the open directory {@code parent}, a directory with all it holds. */
    private static void remove(SecureDirectoryStream<Path> parent, Path name) throws IOException {
        PosixFileAttributes a;
        try {
            a = parent.getFileAttributeView(name, PosixFileAttributeView.class, NO_FOLLOW).readAttributes();
        } catch (NoSuchFileException e) {
            return;
        }
        if (!a.isDirectory()) {
            unlink(parent, name);
            return;
        }
        SecureDirectoryStream<Path> opened;
        try {
            opened = parent.newDirectoryStream(name, NO_FOLLOW);
        } catch (NoSuchFileException e) {
            return;
        } catch (FileSystemException e) {
            unlink(parent, name); // swapped for a link or a file since it was read: that is unlinked, never entered
            return;
        }
        try (SecureDirectoryStream<Path> dir = opened) {
            if (!a.permissions().contains(PosixFilePermission.OWNER_WRITE)
                    || !a.permissions().contains(PosixFilePermission.OWNER_EXECUTE)) {
                // a read-only directory from an image (0555) would keep its entries from a non-root kiln
                dir.getFileAttributeView(PosixFileAttributeView.class).setPermissions(EnumSet.of(
                        PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
                        PosixFilePermission.OWNER_EXECUTE));
            }
            for (Path entry : dir) {
                remove(dir, entry.getFileName());
            }
        }
        try {
            parent.deleteDirectory(name);
        } catch (NoSuchFileException e) {
            // removed meanwhile
        }
    }

    private static void unlink(SecureDirectoryStream<Path> parent, Path name) throws IOException {
        try {
            parent.deleteFile(name);
        } catch (NoSuchFileException e) {
            // removed meanwhile
        }
    }
}
