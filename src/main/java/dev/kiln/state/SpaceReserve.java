package dev.kiln.state;

import dev.kiln.KilnLog;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * A file of {@link #SIZE} bytes kept under kiln's root ({@code kiln.db-reserve}) so that on a full disk kiln can
 * still make the database writes that free space ({@link Database#essential}): giving it up makes room for them,
 * and it is taken back once there is room again. A ballast file rather than SQLite settings: WAL space is reused
 * only after a checkpoint that no reader blocks, so no PRAGMA guarantees that a delete needs no new block; the
 * reserve does, whatever the WAL's state. One MiB holds some 250 WAL frames, where an untag or an exit takes 2 to 5.
 * Zeros, written (not a sparse length): a filesystem that compresses zeros would make it weaker there.
 */
final class SpaceReserve {
    private static final KilnLog LOG = KilnLog.of(SpaceReserve.class);

    static final int SIZE = 1 << 20;

    private final Path file;
    private volatile boolean held;

    SpaceReserve(Path file) {
        this.file = file;
        this.held = Files.isRegularFile(file) && size() == SIZE;
    }

    /** Deletes the reserve; false if there was none to give up. */
    synchronized boolean release() {
        try {
            boolean had = Files.deleteIfExists(file);
            held = false;
            if (had) {
                LOG.warn("the disk under " + file.getParent() + " is full: gave up the "
                        + (SIZE >> 10) + " KiB reserve to record a removal or an exit");
            }
            return had;
        } catch (IOException e) {
            return false;
        }
    }

    /** Writes the reserve if it is missing and the disk has room for it; quietly does nothing otherwise. */
    void restore() {
        if (held) {
            return;
        }
        synchronized (this) {
            if (held || !room()) {
                return;
            }
            try (FileChannel ch = FileChannel.open(file, java.util.Set.of(StandardOpenOption.CREATE,
                    StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE),
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
                ByteBuffer zeros = ByteBuffer.allocate(64 << 10);
                for (long left = SIZE; left > 0; left -= zeros.capacity()) {
                    zeros.clear();
                    while (zeros.hasRemaining()) {
                        ch.write(zeros);
                    }
                }
                ch.force(false);
                held = true;
            } catch (IOException e) {
                try {
                    Files.deleteIfExists(file); // a partial reserve would only take the last free blocks
                } catch (IOException ignored) {
                    // tried again at the next restore
                }
            }
        }
    }

    private boolean room() {
        try {
            // what the reserve takes, and a little for the filesystem's own blocks (else the write fails at its end)
            return Files.getFileStore(file.getParent()).getUsableSpace() >= SIZE + (64 << 10);
        } catch (IOException e) {
            return false;
        }
    }

    private long size() {
        try {
            return Files.size(file);
        } catch (IOException e) {
            return -1;
        }
    }
}
