package dev.kiln.isolation.vm;

import dev.kiln.testing.Command;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

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

    /**
     * --disk-size is the API client's, and each size is an image of its own (a 2 TiB one holds ~28 MiB): kilnd kept
     * the extents of every image it had copied, for good (review of 2026-12-08). Only a few are kept.
     */
    @Test
    void kilndKeepsTheExtentsOfAFewImagesWhateverTheSizesAsked() throws Exception {
        Command.require("mkfs.ext4", "e2fsprogs");
        Path cache = dir.resolve("vm-disks");
        for (int i = 0; i < 7; i++) {
            Path disk = WritableDisk.ensure(Files.createDirectories(dir.resolve("s" + i)).resolve("disk.ext4"),
                    SIZE + i * 4096L, cache, true);
            Command.run("cmp", cache.resolve("empty-" + (SIZE + i * 4096L) + "-nj.ext4").toString(), disk.toString());
        }
        java.lang.reflect.Field memo = EmptyDisk.class.getDeclaredField("EXTENTS");
        memo.setAccessible(true);
        assertThat(((java.util.Map<?, ?>) memo.get(null))).hasSizeLessThanOrEqualTo(4);
    }

    /**
     * The disk holds what the workload wrote: the owner's alone (cp kept the image's 0600; the first copy 0644), and so
     * are the cached empty image a copy falls back to cp from and a disk seeded by {@code kiln cp} before the first
     * start (both 0644 before the sixth review's F4).
     */
    @Test
    void aSandboxsDiskIsItsOwnersAlone() throws IOException {
        Command.require("mkfs.ext4", "e2fsprogs");
        Path disk = WritableDisk.ensure(Files.createDirectories(dir.resolve("m")).resolve("disk.ext4"), SIZE,
                dir.resolve("vm-disks"), true);
        Path seeded = WritableDisk.seeded(Files.createDirectories(dir.resolve("s")).resolve("disk.ext4"), SIZE,
                Files.createDirectories(dir.resolve("seed")));
        for (Path file : List.of(disk, dir.resolve("vm-disks/empty-" + SIZE + "-nj.ext4"), seeded)) {
            assertThat(java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(file)))
                    .as(file.toString()).isEqualTo("rw-------");
        }
    }

    private static long allocatedBytes(Path file) throws IOException {
        return 512L * Long.parseLong(Command.run("stat", "-c", "%b", file.toString()).strip());
    }

    private static String uuid(Path disk) {
        return Command.run("dumpe2fs", "-h", disk.toString()).lines().filter(l -> l.startsWith("Filesystem UUID:"))
                .findFirst().orElseThrow();
    }
}
