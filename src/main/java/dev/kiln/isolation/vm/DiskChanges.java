package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;
import dev.kiln.rootfs.Mounts;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Function;

/**
 * What a stopped VM changed: the overlay's upper directory on its writable ext4 disk, read through {@code fuse2fs}
 * (read-only) rather than a kernel mount, because the guest wrote that filesystem and could have crafted it: a
 * malformed ext4 then meets a user-space parser, not the host kernel's. overlayfs's whiteouts and opaque marks are
 * the guest kernel's, in the same form as a container's upper directory.
 */
final class DiskChanges {
    private static final Duration MOUNT_TIMEOUT = Duration.ofSeconds(30);

    private DiskChanges() {
    }

    static <T> T read(Path dir, Function<Path, T> work) {
        Path disk = dir.resolve("disk.ext4");
        Path mnt = dir.resolve("changes");
        try {
            Files.createDirectories(mnt, OwnerOnly.DIRECTORY);
            if (!Files.isRegularFile(disk)) {
                return work.apply(noChanges(dir)); // never booted: nothing changed
            }
            Mounts.unmount(mnt, false);
            Tool.run(List.of("fuse2fs", "-o", "ro,nosuid,nodev,noexec,norecovery", disk.toString(), mnt.toString()),
                    MOUNT_TIMEOUT, "fuse2fs");
        } catch (IOException e) {
            throw failed(e);
        }
        try {
            // The guest wrote this filesystem: its "upper" may be a link to any host path, which the host would follow
            // (the VM is stopped, so what is checked here stays). No changes: kilnd's own empty directory, never a
            // name of the guest's.
            Path upper = mnt.resolve("upper");
            return work.apply(Files.isDirectory(upper, LinkOption.NOFOLLOW_LINKS) ? upper : noChanges(dir));
        } finally {
            Mounts.unmount(mnt, true);
        }
    }

    private static Path noChanges(Path dir) {
        try {
            return Files.createDirectories(dir.resolve("no-changes"));
        } catch (IOException e) {
            throw failed(e);
        }
    }

    private static KilnException failed(IOException e) {
        return new KilnException(KilnException.Kind.INTERNAL, "cannot read the changes of the VM: " + e.getMessage(), e);
    }
}
