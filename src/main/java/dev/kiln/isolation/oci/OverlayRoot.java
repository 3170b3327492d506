package dev.kiln.isolation.oci;

import dev.kiln.LibcCall;
import dev.kiln.rootfs.Mounts;
import dev.kiln.rootfs.Trees;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A sandbox's overlay root ({@link Mounts#overlay}'s mount, same options), made and removed with mount(2) and
 * umount2(2) through FFM: util-linux's {@code mount} and {@code umount} were two processes on every run's path
 * (~10–25 ms each here, docs/runtime-spec.md). When the call fails, the standard tool is tried, so the error a user
 * reads stays the tool's.
 */
final class OverlayRoot {

    private static final int EBUSY = 16;
    private static final int MNT_DETACH = 2;

    private OverlayRoot() {
    }

    /**
     * Mounts {@code lower} + {@code upper} at {@code target}, unless something is mounted there already.
     *
     * <p>{@code disposable} ({@code --rm}): with overlayfs's {@code volatile} option (Linux 5.10+), as podman mounts
     * the root of a {@code --rm} container. Without it every unmount syncs the whole filesystem the upper layer is on
     * (overlayfs's sync_fs): measured 13–15 ms per unmount here with a quiet disk, against 0.1–1.6 ms with
     * {@code volatile}, and on the path of every {@code run --rm} between the exit and the client's answer; more
     * when others write to that disk. The price is that the layer may be lost in a host crash, and such a sandbox is
     * removed anyway. A volatile mount leaves {@code work/work/incompat/volatile}, over which the kernel refuses any
     * later mount of the same directories: it is removed first (a disposable sandbox mounted again: started after a
     * reboot, or {@code cp} into it). A kernel that refuses the option gets the ordinary mount.
     */
    static void mount(Path lower, Path upper, Path work, Path target, boolean disposable) {
        if (Mounts.isMounted(target)) {
            return;
        }
        try {
            Files.createDirectories(upper);
            Files.createDirectories(work);
            Files.createDirectories(target);
            String data = "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work;
            if (disposable) {
                Trees.delete(work.resolve("work").resolve("incompat"));
            }
            for (String options : disposable ? List.of(data + ",volatile", data) : List.of(data)) {
                if (LibcCall.mount("overlay", target.toString(), "overlay", 0L, options) == 0) {
                    return;
                }
            }
        } catch (IOException | RuntimeException e) {
            // the tool below says what is wrong
        }
        Mounts.overlay(lower, upper, work, target);
    }

    /** Unmounts {@code target} if mounted: lazily if busy, so a stuck process cannot keep it (as Mounts.unmount). */
    static void unmount(Path target) {
        if (!Mounts.isMounted(target)) {
            return;
        }
        try {
            int errno = LibcCall.umount2(target.toString(), 0);
            if (errno == EBUSY) {
                errno = LibcCall.umount2(target.toString(), MNT_DETACH);
            }
            if (errno == 0) {
                return;
            }
        } catch (RuntimeException e) {
            // the tool below says what is wrong
        }
        Mounts.unmount(target, false);
    }
}
