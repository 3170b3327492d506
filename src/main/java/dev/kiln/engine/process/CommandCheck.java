package dev.kiln.engine.process;

import dev.kiln.KilnException;
import dev.kiln.isolation.ProcessSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Docker's exit codes for a command that cannot run: 127 when it is not found (on the process's PATH), 126 when it
 * is not executable. Checked before the runtime starts, in the image's tree and then the sandbox's writable layer,
 * resolving inside each root (an image cannot point the check at host files).
 */
public final class CommandCheck {
    private CommandCheck() {
    }

    public static void verify(ProcessSpec process, Path imageRoot, Path upper) {
        String cmd = process.args().getFirst();
        List<Path> roots = Files.isDirectory(upper) ? List.of(upper, imageRoot) : List.of(imageRoot);
        if (cmd.contains("/")) {
            String abs = cmd.startsWith("/") ? cmd : process.cwd() + "/" + cmd;
            Optional<Path> found = find(roots, abs);
            if (found.isEmpty()) {
                throw KilnException.command(127, "exec: \"" + cmd + "\": stat " + cmd
                        + ": no such file or directory");
            }
            requireExecutable(cmd, found.get());
            return;
        }
        for (String dir : path(process.env())) {
            Optional<Path> found = find(roots, dir + "/" + cmd);
            if (found.isPresent() && Files.isRegularFile(found.get())) {
                requireExecutable(cmd, found.get());
                return;
            }
        }
        throw KilnException.command(127, "exec: \"" + cmd + "\": executable file not found in $PATH");
    }

    private static Optional<Path> find(List<Path> roots, String path) {
        for (Path root : roots) {
            Optional<Path> p = RootfsFile.resolve(root, path);
            if (p.isPresent() && Files.exists(p.get(), java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                return p;
            }
        }
        return Optional.empty();
    }

    private static void requireExecutable(String cmd, Path file) {
        try {
            int mode = (int) Files.getAttribute(file, "unix:mode", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            if (Files.isDirectory(file, java.nio.file.LinkOption.NOFOLLOW_LINKS) || (mode & 0111) == 0) {
                throw KilnException.command(126, "exec: \"" + cmd + "\": permission denied");
            }
        } catch (java.io.IOException e) {
            throw KilnException.command(126, "exec: \"" + cmd + "\": " + e.getMessage());
        }
    }

    private static List<String> path(List<String> env) {
        String value = env.stream().filter(e -> e.startsWith("PATH=")).map(e -> e.substring(5)).reduce((a, b) -> b)
                .orElse(ImageProcess.DEFAULT_PATH);
        return List.of(value.split(":"));
    }
}
