package dev.kiln.isolation.vm;

import dev.kiln.LibcCall;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One of kiln's cached empty ext4 images ({@code vm-disks/empty-<bytes>[-nj].ext4}, made once by mkfs.ext4) held in
 * kilnd's memory as its data extents, ~1 MB of a 2 GiB file: each sandbox's writable disk is then written inside
 * kilnd, a sparse file of the image's size with those extents at their offsets, where {@code cp --sparse=always}
 * started a process for every VM (17-48 ms of a VM's create at load 8, docs/vm.md "Snapshot start"). The extents are
 * found with {@code lseek(SEEK_DATA/SEEK_HOLE)} once per image file (its inode, size and time: a new image is read
 * anew). The copy has the image's bytes everywhere (a hole reads as zeros), as cp's had.
 */
final class EmptyDisk {
    /**
     * More data than kilnd holds for one image (an empty ext4 of 2 GiB has ~1.2 MiB, of 1 TiB ~16 MiB): a larger
     * one, or what is not one of kiln's images, is left to cp (which copies anything).
     */
    private static final long MAX_DATA = 16L << 20;
    /**
     * Images whose extents kilnd keeps, at most: sizes are the API client's ({@code --disk-size}), each its own image
     * (a 2 TiB one holds ~28 MiB), and a memo of every size asked grew kilnd's heap for good (review of 2026-12-08).
     * The default size with and without a journal are the usual two.
     */
    private static final int KEPT = 4;
    /** A sandbox's disk: the owner's alone, as cp made it from the 0600 image. */
    private static final java.nio.file.attribute.FileAttribute<?> OWNER_ONLY = java.nio.file.attribute
            .PosixFilePermissions.asFileAttribute(java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
    private static final Map<FileIdentity, List<Extent>> EXTENTS = new ConcurrentHashMap<>();

    private record Extent(long offset, byte[] bytes) {
    }

    private EmptyDisk() {
    }

    /**
     * Writes a copy of {@code image} as the new file {@code target} (which must not exist), sparse; false (nothing
     * written) if {@code image}'s extents cannot be read here (no SEEK_DATA, or too much data for an empty disk).
     */
    static boolean copy(Path image, Path target) throws IOException {
        BasicFileAttributes a = Files.readAttributes(image, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        FileIdentity key = FileIdentity.of(a);
        List<Extent> extents = EXTENTS.get(key);
        if (extents == null) {
            Optional<List<Extent>> read;
            try {
                read = read(image, a.size());
            } catch (RuntimeException e) { // lseek not linkable here (no native access): cp does it
                return false;
            }
            if (read.isEmpty()) return false;
            extents = read.get();
            synchronized (EXTENTS) { // creates at once: the bound holds
                EXTENTS.keySet().removeIf(k -> java.util.Objects.equals(k.inode(), key.inode())); // older contents
                while (EXTENTS.size() >= KEPT) EXTENTS.remove(EXTENTS.keySet().iterator().next());
                EXTENTS.put(key, extents);
            }
        }
        try (FileChannel out = FileChannel.open(target, java.util.Set.of(StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE), OWNER_ONLY)) {
            for (Extent e : extents) {
                ByteBuffer b = ByteBuffer.wrap(e.bytes());
                long at = e.offset();
                while (b.hasRemaining()) at += out.write(b, at);
            }
        }
        // the hole after the last extent: the size set on the file just written, never through a link put there
        int fd = LibcCall.open(target.toString(), LibcCall.O_WRONLY | LibcCall.O_NOFOLLOW | LibcCall.O_NONBLOCK
                | LibcCall.O_CLOEXEC);
        if (fd < 0) throw new IOException("cannot open " + target + ": " + LibcCall.describe(-fd));
        try {
            int e = LibcCall.ftruncate(fd, a.size());
            if (e != 0) throw new IOException("cannot size " + target + ": " + LibcCall.describe(e));
        } finally {
            LibcCall.close(fd);
        }
        return true;
    }

    private static Optional<List<Extent>> read(Path image, long size) throws IOException {
        int fd = LibcCall.open(image.toString(), LibcCall.O_NOFOLLOW | LibcCall.O_CLOEXEC);
        if (fd < 0) throw new IOException("cannot open " + image + ": " + LibcCall.describe(-fd));
        List<long[]> ranges = new ArrayList<>();
        long total = 0;
        try {
            long at = 0;
            while (at < size) {
                long data = LibcCall.lseek(fd, at, LibcCall.SEEK_DATA);
                if (data < 0) break; // ENXIO: no data after `at` (or SEEK_DATA unsupported: checked below)
                long hole = LibcCall.lseek(fd, data, LibcCall.SEEK_HOLE);
                if (hole <= data) return Optional.empty();
                ranges.add(new long[] {data, hole});
                total += hole - data;
                if (total > MAX_DATA) return Optional.empty();
                at = hole;
            }
        } finally {
            LibcCall.close(fd);
        }
        if (ranges.isEmpty()) return Optional.empty(); // an ext4 always has data (its superblock): not understood
        List<Extent> extents = new ArrayList<>();
        try (FileChannel in = FileChannel.open(image, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            for (long[] r : ranges) {
                ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(r[1] - r[0]));
                while (b.hasRemaining()) {
                    if (in.read(b, r[0] + b.position()) < 0) throw new IOException(image + " shrank while read");
                }
                extents.add(new Extent(r[0], b.array()));
            }
        }
        return Optional.of(List.copyOf(extents));
    }
}
