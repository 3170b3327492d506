package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.rootfs.Mounts;
import dev.kiln.rootfs.Trees;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Function;

/**
 * The host's view of a VM sandbox's root tree while its VM does not run, for {@code docker cp} and {@code export}
 * (docs/volumes.md, "Copying files"). Two cases, by who last wrote the writable disk:
 *
 * <ul>
 *   <li><b>Never booted</b>: the disk holds only what kiln's mkfs wrote. Files copied in go to a host directory, the
 *   seed ({@code seed/upper}), through a host overlay over the image's tree — the container isolation's copy, copy-up
 *   and whiteouts by the host kernel on kiln-written directories. The next start makes the writable disk from the
 *   seed ({@code mkfs.ext4 -d}: owners, modes, xattrs, whiteouts kept), so the guest's overlay finds the files in its
 *   upper directory.</li>
 *   <li><b>Booted</b>: the disk is the guest's and could be crafted. It is read through {@code fuse2fs} (read-only,
 *   no journal replay: libext2fs in user space parses it, never the host kernel's ext4) and merged with the image's
 *   tree by a read-only overlay with no upper layer that follows no redirect. Copies into it are refused: kiln never
 *   writes a filesystem its guest wrote.</li>
 * </ul>
 *
 * A booted sandbox is one with a {@code vm/} directory: {@link VmIsolator#start} makes it before the VMM first runs.
 */
final class DiskTree {
    private static final Duration MOUNT_TIMEOUT = Duration.ofSeconds(30);

    private DiskTree() {
    }

    /** Whether a guest has had the sandbox's writable disk (a start made its {@code vm/} directory). */
    static boolean booted(Path dir) {
        return Files.isDirectory(dir.resolve("vm"));
    }

    /** The directory whose {@code upper/} the next start puts on the new writable disk, if files were copied in. */
    static Path seed(Path dir) {
        Path seed = dir.resolve("seed");
        return Files.isDirectory(seed.resolve("upper")) ? seed : null;
    }

    /** Removes the seed once a disk holds it (or the sandbox goes). */
    static void dropSeed(Path dir) {
        Trees.delete(dir.resolve("seed"));
        Trees.delete(dir.resolve("seed-work"));
    }

    static <T> T with(SandboxSpec spec, boolean write, Function<Path, T> work) {
        Path dir = spec.dir();
        Path root = dir.resolve("rootfs");
        Mounts.unmount(root, false); // a view a crashed kilnd left
        if (!booted(dir)) {
            Mounts.overlay(spec.imageRootfs(), dir.resolve("seed/upper"), dir.resolve("seed-work"), root);
            try {
                return work.apply(root);
            } finally {
                Mounts.unmount(root, true);
                if (empty(dir.resolve("seed/upper"))) {
                    dropSeed(dir); // a read or a refused copy: the next start needs no seeded disk
                }
            }
        }
        if (write) {
            throw KilnException.conflict("cannot copy into vm sandbox " + spec.name() + ": its VM has run, so its "
                    + "writable disk is the guest's, and kiln never writes a filesystem a guest wrote (copy before "
                    + "the first start, or use docker exec " + spec.name() + " tar -x while it runs)");
        }
        Path disk = dir.resolve("disk.ext4");
        Path view = dir.resolve("disk-view");
        List<Path> lowers;
        try {
            Files.createDirectories(view, OwnerOnly.DIRECTORY);
            Mounts.unmount(view, false);
            if (Files.isRegularFile(disk)) {
                Tool.run(List.of("fuse2fs", "-o", "ro,nosuid,nodev,noexec,norecovery", disk.toString(),
                        view.toString()), MOUNT_TIMEOUT, "fuse2fs");
            }
            Path upper = view.resolve("upper");
            lowers = Files.isDirectory(upper, java.nio.file.LinkOption.NOFOLLOW_LINKS)
                    ? List.of(upper, spec.imageRootfs()) : List.of(spec.imageRootfs());
        } catch (IOException e) {
            Mounts.unmount(view, true);
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot read the disk of vm sandbox " + spec.name()
                    + ": " + e.getMessage(), e);
        }
        try {
            if (lowers.size() == 1) { // an overlay needs two layers; the image's tree alone is read as it is
                Mounts.bindReadOnly(spec.imageRootfs(), root);
            } else {
                Mounts.overlayReadOnly(lowers, root);
            }
            try {
                return work.apply(root);
            } finally {
                Mounts.unmount(root, true);
            }
        } finally {
            Mounts.unmount(view, true);
        }
    }

    private static boolean empty(Path dir) {
        try (var list = Files.list(dir)) {
            return list.findAny().isEmpty();
        } catch (IOException e) {
            return false;
        }
    }
}
