package dev.kiln.isolation;

import dev.kiln.KilnException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A host program an isolator drives ({@code runc}, {@code runsc}, {@code qemu-system-x86_64}, {@code firecracker}),
 * found the same way for all: the path kilnd's configuration gives it ({@code runtime-paths}), else the first
 * executable file of that name in {@code $PATH} or the usual bin and sbin directories. A configured path that is not
 * there is missing: kiln never falls back to another copy behind the configuration's back.
 *
 * @param name       the program's name
 * @param configured the configured path, null for a search
 * @param install    how to install it, for the error a person reads ({@code apt-get install runc})
 */
public record RuntimeBinary(String name, Path configured, String install) {

    private static final List<String> USUAL = List.of("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
            "/sbin", "/bin");

    /** {@code name}, at the path {@code configured} gives it if it gives one. */
    public static RuntimeBinary of(String name, String install, Map<String, Path> configured) {
        return new RuntimeBinary(name, configured.get(name), install);
    }

    /** Where the program is; empty when it is not there. */
    public Optional<Path> locate() {
        if (configured != null) {
            return executable(configured) ? Optional.of(configured) : Optional.empty();
        }
        for (String dir : searchPath()) {
            Path candidate = Path.of(dir.isEmpty() ? "." : dir, name);
            if (executable(candidate)) {
                return Optional.of(candidate.toAbsolutePath());
            }
        }
        return Optional.empty();
    }

    /** Available when found; else {@code who} (e.g. "the gvisor isolation") needs it, and what to do. */
    public Availability availability(String who) {
        if (locate().isPresent()) {
            return Availability.AVAILABLE;
        }
        return Availability.missing(who + " needs " + name + ", which is " + (configured != null
                ? "not at " + configured + " (runtime-paths in kilnd's config file)"
                : "not installed (" + install + ")"));
    }

    /** The program's path, or the one-line error {@link #availability} gives. */
    public Path path(String who) {
        return locate().orElseThrow(() -> new KilnException(KilnException.Kind.UNAVAILABLE,
                availability(who).missing()));
    }

    private static Set<String> searchPath() {
        Set<String> dirs = new LinkedHashSet<>();
        String path = System.getenv("PATH");
        if (path != null) {
            dirs.addAll(new ArrayList<>(List.of(path.split(":"))));
        }
        dirs.addAll(USUAL);
        return dirs;
    }

    private static boolean executable(Path p) {
        return Files.isRegularFile(p) && Files.isExecutable(p);
    }
}
