package dev.kiln.containerd;

import static org.assertj.core.api.Assertions.assertThat;

import dev.kiln.testing.MountPoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The shim mounts containerd's rootfs with mount(2) itself (no mount(8) process on a pod's start). */
class RootfsMountTest {

    @TempDir
    Path tmp;

    @RegisterExtension
    final MountPoint mount = new MountPoint();

    @Test
    void mountsAnOverlayAsContainerdPassesIt() throws Exception {
        Path lower = Files.createDirectories(tmp.resolve("lower"));
        Files.writeString(lower.resolve("from-image"), "image\n");
        Path upper = Files.createDirectories(tmp.resolve("upper"));
        Path work = Files.createDirectories(tmp.resolve("work"));
        Path target = mount.at(Files.createDirectories(tmp.resolve("rootfs")));
        // containerd's overlayfs snapshotter's mount for a container: options as mount(8) takes them
        RootfsMount m = RootfsMount.of("overlay", List.of("index=off", "workdir=" + work, "upperdir=" + upper,
                "lowerdir=" + lower));

        assertThat(m.mount("overlay", target)).isZero();

        assertThat(Files.readAllLines(Path.of("/proc/self/mountinfo"))).anyMatch(l -> l.contains(" " + target + " ")
                && l.contains(" - overlay overlay ") && l.contains("lowerdir=" + lower));
        assertThat(Files.readString(target.resolve("from-image"))).isEqualTo("image\n");
        Files.writeString(target.resolve("written"), "container\n");
        assertThat(upper.resolve("written")).hasContent("container");
    }

    @Test
    void flagsAreFlagsAndTheRestIsTheFileSystemsData() {
        RootfsMount m = RootfsMount.of("overlay", List.of("ro", "nosuid", "rw", "index=off", "lowerdir=/a:/b"));
        assertThat(m.flags()).isEqualTo(1L | 2L);
        assertThat(m.data()).isEqualTo("index=off,lowerdir=/a:/b");
        assertThat(m.plain()).isTrue();
    }

    @Test
    void whatTakesMoreThanOneCallIsLeftToMount8() {
        assertThat(RootfsMount.of("bind", List.of("rbind", "ro")).mount("/", Path.of("/nonexistent"))).isEqualTo(-1);
        assertThat(RootfsMount.of("none", List.of("remount", "ro")).plain()).isFalse();
        assertThat(RootfsMount.of("ext4", List.of("loop")).plain()).isFalse();
    }
}
