package dev.kiln.rootfs;

import dev.kiln.KilnException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Read-only bind mounts of unpacked images ({@code kiln image mount}), done with util-linux {@code mount} so the
 * kernel's semantics are the standard tool's. Needs root (CAP_SYS_ADMIN), as {@code podman image mount} does.
 */
public final class ReadOnlyMount {
    private ReadOnlyMount() {
    }

    public static void bind(Path source, Path target) {
        try {
            Files.createDirectories(target);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot create mount point " + target + ": "
                    + e.getMessage(), e);
        }
        run(List.of("mount", "--bind", "-o", "ro", source.toString(), target.toString()), "mount " + source);
    }

    public static void unbind(Path target) {
        run(List.of("umount", target.toString()), "unmount " + target);
        try {
            Files.deleteIfExists(target);
        } catch (IOException ignored) {
            // an empty mount point left behind is harmless and reused by the next mount
        }
    }

    public static boolean isMounted(Path target) {
        try {
            String abs = target.toAbsolutePath().normalize().toString();
            return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                    .map(l -> l.split(" ")).anyMatch(f -> f.length > 4 && f[4].equals(abs));
        } catch (IOException e) {
            return false;
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
                        + out.lines().findFirst().orElse("exit " + p.exitValue()) + " (image mounts need root)");
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot " + what + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while trying to " + what);
        }
    }
}
