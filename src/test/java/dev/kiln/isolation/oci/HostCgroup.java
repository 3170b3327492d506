package dev.kiln.isolation.oci;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;

/** Where a relative cgroupsPath lands on the host for this test JVM (runtimes nest it under their caller's cgroup). */
final class HostCgroup {
    private HostCgroup() {
    }

    /** The v1 directory of {@code controller} for {@code relative}; skips on a cgroup v2-only host. */
    static Path dir(String controller, String relative) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/cgroup"))) {
            String[] fields = line.split(":", 3);
            for (String name : fields[1].split(",")) {
                if (name.equals(controller)) {
                    return Path.of("/sys/fs/cgroup", controller, fields[2]).resolve(relative);
                }
            }
        }
        Assumptions.abort("no cgroup v1 '" + controller + "' hierarchy here (cgroup v2 only)");
        throw new AssertionError("unreachable");
    }
}
