package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;

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
     * As {@link #ensure(Path, long)}, but a copy of an empty disk of that size made once in {@code cacheDir}
     * ({@code empty-<bytes>.ext4}): its ~1 MB of metadata written sparse ({@link EmptyDisk}, by kilnd itself; {@code
     * cp --sparse=always} where that cannot read the image), where mkfs.ext4 computes and fsyncs them for every
     * sandbox (docs/vm.md, "Snapshot start": part of a VM's start). Every copy has the same filesystem UUID and
     * directory-hash seed; both are only ever seen inside the one guest that mounts it.
     */
    static Path ensure(Path file, long sizeBytes, Path cacheDir) {
        return ensure(file, sizeBytes, cacheDir, false);
    }

    /**
     * {@code disposable} ({@code --rm}): an ext4 without a journal ({@code empty-<bytes>-nj.ext4}), as the disk goes
     * with the sandbox and need not survive a crash of the host (the container isolation's overlay is mounted
     * {@code volatile} for the same reason). Its mount in the guest starts no journal (jbd2's thread, the journal's
     * superblock and recovery check), and its writes are not committed twice: measured in docs/vm.md, "Snapshot
     * start". A host crash can leave such a disk unclean; ext4 mounts it anyway, and the sandbox is removed.
     */
    static Path ensure(Path file, long sizeBytes, Path cacheDir, boolean disposable) {
        if (Files.isRegularFile(file)) return file;
        Path empty = cacheDir.resolve("empty-" + sizeBytes + (disposable ? "-nj" : "") + ".ext4");
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try {
            if (!Files.isRegularFile(empty)) {
                Files.createDirectories(cacheDir);
                Path made = Files.createTempFile(cacheDir, "empty-", ".tmp"); // two kilnd threads may race: both fine
                try {
                    make(made, sizeBytes, null, made, !disposable);
                    Files.move(made, empty, java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                            java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                } finally {
                    Files.deleteIfExists(made);
                }
            }
            Files.deleteIfExists(tmp);
            if (!EmptyDisk.copy(empty, tmp)) { // written by kilnd from the image's extents; else as before
                Tool.run(List.of("cp", "--sparse=always", empty.toString(), tmp.toString()), MKFS_TIMEOUT,
                        "coreutils");
            }
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

    /**
     * Makes the disk anew holding {@code seed}'s tree ({@code mkfs.ext4 -d}: owners, modes, xattrs and overlayfs's
     * whiteouts kept): the files copied into a VM sandbox before its first boot ({@link DiskTree}).
     */
    static Path seeded(Path file, long sizeBytes, Path seed) {
        return make(file, sizeBytes, seed);
    }

    private static Path make(Path file, long sizeBytes, Path seed) {
        return make(file, sizeBytes, seed, file.resolveSibling(file.getFileName() + ".tmp"), true);
    }

    /** mkfs.ext4 on {@code tmp}, then moved to {@code file} (the same path: made in place). */
    private static Path make(Path file, long sizeBytes, Path seed, Path tmp, boolean journal) {
        try {
            Files.deleteIfExists(tmp);
            Files.createFile(tmp, OwnerOnly.FILE); // 0600 from the start: the guest's writes end up in it
            try (RandomAccessFile f = new RandomAccessFile(tmp.toFile(), "rw")) {
                f.setLength(sizeBytes); // sparse: blocks are only allocated as the guest writes
            }
            List<String> mkfs = new java.util.ArrayList<>(List.of("mkfs.ext4", "-q", "-F", "-m", "0", "-E",
                    "lazy_itable_init=1,lazy_journal_init=1"));
            if (!journal) mkfs.addAll(List.of("-O", "^has_journal"));
            if (seed != null) {
                mkfs.addAll(List.of("-d", seed.toString()));
            }
            mkfs.add(tmp.toString());
            Tool.run(mkfs, MKFS_TIMEOUT, "e2fsprogs");
            if (!tmp.equals(file)) Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot make the writable disk " + file + ": "
                    + e.getMessage(), e);
        } finally {
            try {
                if (!tmp.equals(file)) Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // left for the sandbox's removal
            }
        }
        return file;
    }
}
