package dev.kiln;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * Modes for what kiln keeps that no other host user may read: state directories 0700, files holding a sandbox's
 * configuration (its environment can carry secrets) 0600. Given at creation, so a file is never readable for a
 * moment before a chmod; a creation mode is narrowed by the umask, never widened, so these hold under any umask.
 */
public final class OwnerOnly {
    public static final Set<PosixFilePermission> DIRECTORY_MODE = PosixFilePermissions.fromString("rwx------");
    public static final Set<PosixFilePermission> FILE_MODE = PosixFilePermissions.fromString("rw-------");
    public static final FileAttribute<Set<PosixFilePermission>> DIRECTORY =
            PosixFilePermissions.asFileAttribute(DIRECTORY_MODE);
    public static final FileAttribute<Set<PosixFilePermission>> FILE = PosixFilePermissions.asFileAttribute(FILE_MODE);

    private OwnerOnly() {
    }

    /** Writes {@code content} to {@code file}, created 0600 (an existing file is truncated and made 0600 first). */
    public static void write(Path file, byte[] content) throws IOException {
        try (SeekableByteChannel ch = Files.newByteChannel(file, Set.of(StandardOpenOption.CREATE,
                StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING), FILE)) {
            Files.setPosixFilePermissions(file, FILE_MODE);
            ByteBuffer b = ByteBuffer.wrap(content);
            while (b.hasRemaining()) {
                ch.write(b);
            }
        }
    }
}
