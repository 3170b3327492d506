package dev.kiln.rootfs;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The mounts kiln makes on the host: read-only binds of unpacked images ({@code kiln image mount}) and the overlay
 * root of each container sandbox (the image's tree read-only below, the sandbox's writable layer above). Done with
 * util-linux {@code mount} so the kernel's semantics are the standard tool's. Needs root (CAP_SYS_ADMIN).
 */
public final class Mounts {
    private Mounts() {
    }

    /**
     * For looking at an image ({@code kiln image mount}), never a sandbox's root: nosuid and nodev, so a setuid-root
     * file or a device node the image carries is inert on the host, whoever reaches it; the mount point's directory
     * is 0700 on top.
     */
    public static void bindReadOnly(Path source, Path target) {
        try {
            Files.createDirectories(target.getParent(), OwnerOnly.DIRECTORY);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot create " + target.getParent() + ": "
                    + e.getMessage(), e);
        }
        mkdirs(target);
        run(List.of("mount", "--bind", "-o", "ro,nosuid,nodev", source.toString(), target.toString()),
                "mount " + source);
    }

    /**
     * Mounts {@code lower} + {@code upper} at {@code target}, unless something is mounted there already.
     *
     * <p>This mount is the sandbox's root filesystem (runc and runsc take it as the bundle's rootfs; kiln cp mounts
     * it at the same place for a stopped sandbox, and the next start adopts a mount found there), so it keeps setuid
     * and device nodes as Docker's does: {@code su}, {@code sudo} and {@code ping} (file capabilities are ignored on a
     * nosuid mount too) inside the sandbox need them, and runc's bind of a nosuid mount stays nosuid inside the
     * container; a node the sandbox makes with its CAP_MKNOD opens there only as its device rules allow. The host
     * side is kept from this tree by the directories above it, 0700 from kiln's root down, not by mount flags.
     */
    public static void overlay(Path lower, Path upper, Path work, Path target) {
        if (isMounted(target)) {
            return;
        }
        mkdirs(upper);
        mkdirs(work);
        mkdirs(target);
        run(List.of("mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + lower + ",upperdir=" + upper
                + ",workdir=" + work, target.toString()), "mount the sandbox's root filesystem at " + target);
    }

    /**
     * Mounts a read-only overlay of {@code lowers} (the first on top) at {@code target}: a merged view with no upper
     * layer, for reading a tree whose top layer came from a guest (a VM's writable disk, through fuse2fs). Redirects
     * and metacopy are never followed, so xattrs the guest wrote cannot point the host's overlay anywhere else.
     */
    public static void overlayReadOnly(List<Path> lowers, Path target) {
        mkdirs(target);
        StringBuilder lower = new StringBuilder();
        for (Path p : lowers) {
            lower.append(lower.isEmpty() ? "" : ":").append(p);
        }
        run(List.of("mount", "-t", "overlay", "overlay", "-o", "ro,nosuid,nodev,lowerdir=" + lower
                + ",redirect_dir=nofollow,metacopy=off,index=off,xino=off", target.toString()),
                "mount a read-only view of " + lowers.getFirst() + " at " + target);
    }

    /** Unmounts {@code target} if mounted (lazily if busy, so a stuck process cannot keep it); may remove the dir. */
    public static void unmount(Path target, boolean removeMountPoint) {
        if (isMounted(target)) {
            try {
                run(List.of("umount", target.toString()), "unmount " + target);
            } catch (KilnException busy) {
                run(List.of("umount", "-l", target.toString()), "unmount " + target);
            }
        }
        if (removeMountPoint) {
            try {
                Files.deleteIfExists(target);
            } catch (IOException ignored) {
                // an empty mount point left behind is harmless and reused by the next mount
            }
        }
    }

    /** The mount points at or under {@code dir}, deepest first (the order they can be unmounted in). */
    public static java.util.List<Path> under(Path dir) {
        String abs = dir.toAbsolutePath().normalize().toString();
        return mountPoints().filter(p -> p.equals(abs) || p.startsWith(abs + "/")).map(Path::of)
                .sorted(java.util.Comparator.comparingInt(Path::getNameCount).reversed()).toList();
    }

    public static boolean isMounted(Path target) {
        String abs = target.toAbsolutePath().normalize().toString();
        return mountPoints().anyMatch(abs::equals);
    }

    /**
     * This process's mount points: /proc/self/mountinfo's fifth field, its octal escapes (of a space, tab, newline or
     * backslash in a path) undone.
     */
    private static java.util.stream.Stream<String> mountPoints() {
        return mountinfo().stream().map(l -> l.split(" ")).filter(f -> f.length > 4).map(f -> unescape(f[4]));
    }

    /**
     * /proc/self/mountinfo's lines, decoded in the JVM's file-name charset with bad bytes replaced: one mount anywhere
     * whose path is not valid in it (a root's or an automounter's) made the whole file unreadable, and kiln blind to
     * every mount and cgroup hierarchy (the sixth review's F2). Such a path never equals one of kiln's. Empty if
     * unreadable.
     */
    public static List<String> mountinfo() {
        try {
            return new String(Files.readAllBytes(Path.of("/proc/self/mountinfo")), FILE_NAMES).lines().toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    private static final java.nio.charset.Charset FILE_NAMES =
            java.nio.charset.Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));

    static String unescape(String field) {
        if (field.indexOf('\\') < 0) return field;
        StringBuilder b = new StringBuilder(field.length());
        for (int i = 0; i < field.length(); i++) {
            char c = field.charAt(i);
            if (c == '\\' && i + 3 < field.length() && field.substring(i + 1, i + 4).matches("[0-3][0-7][0-7]")) {
                b.append((char) Integer.parseInt(field.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    private static void mkdirs(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot create " + dir + ": " + e.getMessage(), e);
        }
    }

    private static void run(List<String> cmd, String what) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot " + what + ": timed out");
            }
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (p.exitValue() != 0) {
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot " + what + ": "
                        + out.lines().findFirst().orElse("exit " + p.exitValue()) + " (mounts need root)");
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot " + what + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while trying to " + what);
        }
    }
}
