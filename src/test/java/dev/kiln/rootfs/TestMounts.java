package dev.kiln.rootfs;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Mounts a test makes (mount(8), as root) and their undoing, whatever the test's outcome: nothing left on the host. */
final class TestMounts {
    private TestMounts() {
    }

    /** mount(8) with {@code args} (paths as their strings); fails the test if it fails. */
    static void mount(Object... args) throws Exception {
        List<String> command = new ArrayList<>(List.of("mount"));
        for (Object a : args) command.add(a.toString());
        assertThat(new ProcessBuilder(command).inheritIO().start().waitFor()).as(String.join(" ", command)).isZero();
    }

    /** Detaches every mount under {@code dir}, deepest first (a mount the code under test moved included). */
    static void detachAll(Path dir) throws Exception {
        for (Path m : Mounts.under(dir)) new ProcessBuilder("umount", "-l", m.toString()).start().waitFor();
    }
}
