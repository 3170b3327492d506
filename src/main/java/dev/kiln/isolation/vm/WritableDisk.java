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
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try {
            Files.deleteIfExists(tmp);
            try (RandomAccessFile f = new RandomAccessFile(tmp.toFile(), "rw")) {
                f.setLength(sizeBytes); // sparse: blocks are only allocated as the guest writes
            }
            Tool.run(List.of("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1",
                    tmp.toString()), MKFS_TIMEOUT, "e2fsprogs");
            Files.move(tmp, file);
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
