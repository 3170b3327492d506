package dev.kiln.isolation.oci;

import static org.assertj.core.api.Assertions.assertThat;

import dev.kiln.rootfs.Mounts;
import dev.kiln.testing.MountPoint;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The sandbox root's overlay made with mount(2) and removed with umount2(2): the kernel's view, as the tool's. */
class OverlayRootTest {

    @TempDir
    Path tmp;

    @RegisterExtension
    final MountPoint mount = new MountPoint();

    @Test
    void mountsTheImageBelowTheWritableLayerAndUnmountsIt() throws Exception {
        Path lower = Files.createDirectories(tmp.resolve("image"));
        Files.writeString(lower.resolve("from-image"), "image\n");
        Path upper = tmp.resolve("upper");
        Path target = mount.at(tmp.resolve("rootfs"));

        OverlayRoot.mount(lower, upper, tmp.resolve("work"), target, false);

        assertThat(Mounts.isMounted(target)).isTrue();
        assertThat(Files.readAllLines(Path.of("/proc/self/mountinfo"))).anyMatch(l -> l.contains(" " + target + " ")
                && l.contains(" - overlay overlay ") && l.contains("lowerdir=" + lower) && l.contains("upperdir=" + upper));
        assertThat(Files.readString(target.resolve("from-image"))).isEqualTo("image\n");
        Files.writeString(target.resolve("written"), "sandbox\n");
        assertThat(upper.resolve("written")).as("a write lands in the writable layer").hasContent("sandbox");
        assertThat(lower.resolve("written")).doesNotExist();

        OverlayRoot.mount(lower, upper, tmp.resolve("work"), target, false); // mounted already: nothing stacked
        assertThat(Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                .filter(l -> l.contains(" " + target + " ")).count()).isEqualTo(1);

        OverlayRoot.unmount(target);
        assertThat(Mounts.isMounted(target)).isFalse();
        assertThat(target.resolve("from-image")).doesNotExist();
        OverlayRoot.unmount(target); // not mounted: nothing to do
        assertThat(tmp.resolve("work/work/incompat")).as("a kept sandbox's layer is synced as usual").doesNotExist();
    }

    @Test
    void aDisposableRootIsVolatileAndCanBeMountedAgain() throws Exception {
        Path lower = Files.createDirectories(tmp.resolve("image"));
        Files.writeString(lower.resolve("from-image"), "image\n");
        Path upper = tmp.resolve("upper");
        Path work = tmp.resolve("work");
        Path target = mount.at(tmp.resolve("rootfs"));

        OverlayRoot.mount(lower, upper, work, target, true);
        assertThat(Files.readAllLines(Path.of("/proc/self/mountinfo"))).anyMatch(l -> l.contains(" " + target + " ")
                && l.contains(" - overlay overlay ") && l.contains("volatile"));
        Files.writeString(target.resolve("written"), "sandbox\n");
        OverlayRoot.unmount(target);
        assertThat(work.resolve("work/incompat/volatile")).as("the kernel's mark of a volatile mount").exists();

        // the kernel refuses to mount over that mark: the second mount (a --rm sandbox started again after a reboot,
        // or cp into it) removes it first and keeps the layer's content
        OverlayRoot.mount(lower, upper, work, target, true);
        assertThat(Mounts.isMounted(target)).isTrue();
        assertThat(Files.readString(target.resolve("written"))).isEqualTo("sandbox\n");
        assertThat(Files.readString(target.resolve("from-image"))).isEqualTo("image\n");
        OverlayRoot.unmount(target);
        assertThat(Mounts.isMounted(target)).isFalse();
    }

    @Test
    void aBusyRootIsDetachedLazily() throws Exception {
        Path lower = Files.createDirectories(tmp.resolve("image"));
        Path target = mount.at(tmp.resolve("rootfs"));
        OverlayRoot.mount(lower, tmp.resolve("upper"), tmp.resolve("work"), target, false);
        Process holder = new ProcessBuilder("sleep", "30").directory(target.toFile()).start(); // its cwd pins it
        try {
            OverlayRoot.unmount(target);
            assertThat(Mounts.isMounted(target)).isFalse();
        } finally {
            holder.destroyForcibly().waitFor();
        }
    }
}
