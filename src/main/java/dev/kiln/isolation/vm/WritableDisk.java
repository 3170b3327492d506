package dev.kiln.isolation.vm;

import dev.kiln.KilnException;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A sandbox's own writable disk: a sparse file holding an empty ext4, where the guest keeps the overlay's upper and
 * work directories. Made once per sandbox (it survives restarts, as a container's writable layer does).
 */
final class WritableDisk {
    private static final Duration MKFS_TIMEOUT = Duration.ofMinutes(2);

    private WritableDisk() {
    }

    static Path ensure(Path file, long sizeBytes) {
        if (Files.isRegularFile(file)) return file;
        return make(file, sizeBytes, null);
    }

    /**
     * Makes the disk anew holding {@code seed}'s tree ({@code mkfs.ext4 -d}: owners, modes, xattrs and overlayfs's
     * whiteouts kept): the files copied into a VM sandbox before its first boot ({@link DiskTree}).
     */
    static Path seeded(Path file, long sizeBytes, Path seed) {
        return make(file, sizeBytes, seed);
    }

    private static Path make(Path file, long sizeBytes, Path seed) {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try {
            Files.deleteIfExists(tmp);
            try (RandomAccessFile f = new RandomAccessFile(tmp.toFile(), "rw")) {
                f.setLength(sizeBytes); // sparse: blocks are only allocated as the guest writes
            }
            List<String> mkfs = new java.util.ArrayList<>(List.of("mkfs.ext4", "-q", "-F", "-m", "0", "-E",
                    "lazy_itable_init=1,lazy_journal_init=1"));
            if (seed != null) {
                mkfs.addAll(List.of("-d", seed.toString()));
            }
            mkfs.add(tmp.toString());
            Tool.run(mkfs, MKFS_TIMEOUT, "e2fsprogs");
            Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot make the writable disk " + file + ": "
                    + e.getMessage(), e);
        } finally {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // left for the sandbox's removal
            }
        }
        return file;
    }
}
