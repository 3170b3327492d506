package dev.kiln.isolation.vm;

import dev.kiln.KilnException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;

/**
 * The read-only erofs disk of an image's unpacked tree, shared by every VM of that image: built once with
 * mkfs.erofs into {@code ROOT/vm-disks/<image id>.erofs} (a temp file, then rename, so a reader never sees half).
 * Mode 0600, root's: no VMM opens it by path (the relay opens it and hands QEMU a read-only descriptor), so no jail's
 * uid needs to read it, and a bind mount could not make it readable to one (docs/vm.md, "The VMM's jail").
 */
final class ImageDisk {
    private static final Duration BUILD_TIMEOUT = Duration.ofMinutes(10);

    private ImageDisk() {
    }

    static Path ensure(Path rootfs, Path disksDir) {
        Path file = disksDir.resolve(key(rootfs) + ".erofs");
        if (Files.isRegularFile(file)) return file;
        if (!Files.isDirectory(rootfs)) throw KilnException.notFound("image tree " + rootfs + " is missing");
        try {
            Files.createDirectories(disksDir);
            Path tmp = disksDir.resolve(file.getFileName() + "." + ProcessHandle.current().pid() + "."
                    + Thread.currentThread().threadId() + ".tmp");
            try {
                Files.deleteIfExists(tmp);
                Tool.run(List.of("mkfs.erofs", "--quiet", tmp.toString(), rootfs.toString()), BUILD_TIMEOUT, "erofs-utils");
                Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot build the image disk " + file + ": " + e.getMessage(), e);
        }
        return file;
    }

    /** The image ID when the tree is the rootfs cache's {@code <hex image id>} directory, else a hash of its path. */
    static String key(Path rootfs) {
        String name = rootfs.getFileName().toString();
        if (name.matches("[0-9a-f]{64}")) return name;
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(rootfs.toAbsolutePath().normalize().toString()
                    .getBytes(StandardCharsets.UTF_8));
            return "path-" + HexFormat.of().formatHex(d).substring(0, 32);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
