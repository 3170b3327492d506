package dev.kiln.isolation.vm;

import dev.kiln.testing.Command;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A VM sandbox's writable disk written by kilnd from the cached empty ext4's extents (EmptyDisk) instead of a {@code
 * cp} per sandbox: the same bytes as the image, as sparse, a clean filesystem, and an image made anew (another
 * filesystem UUID) is read anew rather than served from what kilnd remembered of the old one.
 */
class EmptyDiskTest {
    private static final long SIZE = 256L << 20;

    @TempDir
    Path dir;

    @Test
    void aSandboxsDiskIsTheEmptyImageByteForByteSparseAndClean() throws IOException {
        Command.require("mkfs.ext4", "e2fsprogs");
        Path cache = dir.resolve("vm-disks");
        Path disk = WritableDisk.ensure(Files.createDirectories(dir.resolve("a")).resolve("disk.ext4"), SIZE, cache,
                true);
        Path image = cache.resolve("empty-" + SIZE + "-nj.ext4");
        assertThat(Files.size(disk)).isEqualTo(SIZE);
        Command.run("cmp", image.toString(), disk.toString()); // fails (exit 1) on the first differing byte
        assertThat(allocatedBytes(disk)).as("sparse: the image's data only").isLessThanOrEqualTo(allocatedBytes(image))
                .isLessThan(SIZE / 16);
        Command.run("e2fsck", "-fn", disk.toString());
        assertThat(dir.resolve("a")).isDirectoryNotContaining("glob:**.tmp");
    }

    @Test
    void anImageMadeAnewIsReadAnewNotServedFromMemory() throws IOException {
        Command.require("mkfs.ext4", "e2fsprogs");
        Path cache = dir.resolve("vm-disks");
        Path first = WritableDisk.ensure(Files.createDirectories(dir.resolve("a")).resolve("disk.ext4"), SIZE, cache,
                true);
        Path image = cache.resolve("empty-" + SIZE + "-nj.ext4");
        // another empty filesystem of the same size in the image's place (as a new kiln-made image would be)
        Path other = dir.resolve("other.ext4");
        Command.run("truncate", "-s", Long.toString(SIZE), other.toString());
        Command.run("mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", other.toString());
        Files.move(other, image, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        Path second = WritableDisk.ensure(Files.createDirectories(dir.resolve("b")).resolve("disk.ext4"), SIZE, cache,
                true);
        Command.run("cmp", image.toString(), second.toString());
        assertThat(uuid(second)).isEqualTo(uuid(image)).isNotEqualTo(uuid(first));
    }

    private static long allocatedBytes(Path file) throws IOException {
        return 512L * Long.parseLong(Command.run("stat", "-c", "%b", file.toString()).strip());
    }

    private static String uuid(Path disk) {
        return Command.run("dumpe2fs", "-h", disk.toString()).lines().filter(l -> l.startsWith("Filesystem UUID:"))
                .findFirst().orElseThrow();
    }
}
