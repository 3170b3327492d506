package dev.kiln.isolation.oci;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The cgroup hierarchies are read from mountinfo, which holds every mount of the host: one whose path is not UTF-8
 * (a root's or an automounter's) made the whole file unreadable, and every later sandbox failed with "no cgroup
 * hierarchy has the memory controller here" (seen while the sixth review's proof of concept held such a mount).
 */
class CgroupsTest {
    @TempDir
    Path tmp;

    @Test
    void aMountWhosePathIsNotUtf8HidesNoCgroupHierarchy() throws Exception {
        try {
            assertThat(new ProcessBuilder("sh", "-c", "mkdir \"$1/$(printf '\\377')\" && mount -t tmpfs none \"$1\"/*",
                    "sh", tmp.toString()).inheritIO().start().waitFor()).isZero();
            assertThat(Cgroups.hierarchies()).anyMatch(h -> h.controllers().contains("memory"));
        } finally {
            new ProcessBuilder("sh", "-c", "umount -l \"$1\"/*", "sh", tmp.toString()).start().waitFor();
        }
    }
}
