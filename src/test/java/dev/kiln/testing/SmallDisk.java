package dev.kiln.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A small filesystem of its own (a tmpfs of a given size) mounted on a directory, for tests of a full disk:
 * {@link #fill} takes its free space as a filler file, {@link #free} gives it back. Unmounted on close (lazily if
 * something still holds it). Needs root, as the tests that use it do anyway.
 */
public final class SmallDisk implements AutoCloseable {

    private final Path dir;
    private final Path filler;

    private SmallDisk(Path dir) {
        this.dir = dir;
        this.filler = dir.resolve("filler");
    }

    /** Mounts a tmpfs of {@code bytes} on {@code dir} (created if missing). */
    public static SmallDisk mount(Path dir, long bytes) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Command.run("mount", "-t", "tmpfs", "-o", "size=" + bytes + ",mode=0755", "tmpfs", dir.toString());
        return new SmallDisk(dir);
    }

    public Path dir() {
        return dir;
    }

    /** Bytes a writer can still take. */
    public long available() {
        try {
            return Files.getFileStore(dir).getUsableSpace();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Fills the disk until a write fails with ENOSPC, then gives {@code leave} bytes back (whole pages). */
    public void fill(long leave) {
        try (FileChannel ch = FileChannel.open(filler, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.APPEND)) {
            ByteBuffer block = ByteBuffer.allocate(64 << 10);
            try {
                while (true) {
                    block.clear();
                    while (block.hasRemaining()) {
                        ch.write(block);
                    }
                }
            } catch (IOException full) {
                if (!String.valueOf(full.getMessage()).contains("No space left")) {
                    throw full;
                }
            }
            if (leave > 0) {
                ch.truncate(Math.max(0, ch.size() - leave));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot fill " + dir, e);
        }
    }

    /** Deletes the filler. */
    public void free() {
        try {
            Files.deleteIfExists(filler);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        try {
            Command.run("umount", dir.toString());
        } catch (IllegalStateException busy) {
            Command.run("umount", "-l", dir.toString());
        }
    }
}
