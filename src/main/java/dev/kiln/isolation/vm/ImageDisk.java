package dev.kiln.isolation.vm;

import dev.kiln.KilnException;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
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

    /**
     * The disk's size is a multiple of this (a sparse tail: erofs reads only its own blocks), so that nearly every
     * image disk has the size of a QEMU snapshot template's image placeholder, and a VM restored from it keeps the
     * virtio-blk device the template bound instead of probing it after START (docs/vm.md, "Snapshot start").
     */
    static final long SPAN = 1L << 30;

    static Path ensure(Path rootfs, Path disksDir) {
        Path file = disksDir.resolve(key(rootfs) + ".erofs");
        if (Files.isRegularFile(file)) return padded(file);
        if (!Files.isDirectory(rootfs)) throw KilnException.notFound("image tree " + rootfs + " is missing");
        try {
            Files.createDirectories(disksDir);
            Path tmp = disksDir.resolve(file.getFileName() + "." + ProcessHandle.current().pid() + "."
                    + Thread.currentThread().threadId() + ".tmp");
            try {
                Files.deleteIfExists(tmp);
                Tool.run(List.of("mkfs.erofs", "--quiet", tmp.toString(), rootfs.toString()), BUILD_TIMEOUT, "erofs-utils");
                padded(tmp);
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

    /**
     * {@code file} extended to a multiple of {@link #SPAN} (a disk of an older kiln, or just made); only ever longer,
     * so a VM reading it meanwhile sees the same blocks.
     */
    private static Path padded(Path file) {
        try {
            long size = Files.size(file);
            if (size % SPAN != 0) {
                try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
                    f.setLength((size / SPAN + 1) * SPAN);
                }
            }
            return file;
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot pad the image disk " + file + ": "
                    + e.getMessage(), e);
        }
    }

    /** The image ID when the tree is the rootfs cache's {@code <hex image id>} directory, else a hash of its path. */
    static String key(Path rootfs) {
        String name = rootfs.getFileName().toString();
        if (name.matches("[0-9a-f]{64}")) return name;
        return "path-" + ShortHash.of(rootfs.toAbsolutePath().normalize().toString(), 16);
    }
}
