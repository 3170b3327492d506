package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.LibcCall;
import dev.kiln.rootfs.Mounts;
import dev.kiln.testing.MountPoint;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A vm pod's guest can write in the pod directory (virtiofsd serves it), so it can put a symbolic link to a host path
 * where the shim is about to bind a container's root or to unbind one: neither may follow it.
 */
class PodBindTest {
    @TempDir
    Path tmp;

    @RegisterExtension
    final MountPoint mount = new MountPoint();

    private Path root;
    private Path host;

    @BeforeEach
    void containerRootAndAHostDirectory() throws Exception {
        root = Files.createDirectories(tmp.resolve("rootfs"));
        Files.writeString(root.resolve("from-image"), "image\n");
        host = Files.createDirectories(tmp.resolve("host-etc")); // stands for a host path such as /etc
        Files.writeString(host.resolve("passwd"), "root:x:0:0\n");
    }

    @Test
    void aContainersRootIsBoundInThePodDirectoryAndUnboundAgain() throws Exception {
        Path dir = tmp.resolve("bundle");
        Files.createDirectories(DirectoryVm.podDir(dir));
        DirectoryVm.podRoot(dir, "app", root);
        Path at = mount.at(DirectoryVm.podDir(dir).resolve("app"));
        assertThat(Files.readString(at.resolve("from-image"))).isEqualTo("image\n");

        DirectoryVm.podRootGone(dir, "app");
        assertThat(Mounts.isMounted(at)).isFalse();
        assertThat(at).doesNotExist();
    }

    @Test
    void aLinkTheGuestPutWhereTheRootGoesIsRefusedNotFollowed() throws Exception {
        Path dir = tmp.resolve("bundle");
        Files.createDirectories(DirectoryVm.podDir(dir));
        Files.createSymbolicLink(DirectoryVm.podDir(dir).resolve("app"), host);
        mount.at(host);

        assertThatThrownBy(() -> DirectoryVm.podRoot(dir, "app", root)).isInstanceOf(KilnException.class)
                .hasMessage("cannot bind the container's root at " + DirectoryVm.podDir(dir).resolve("app") + ": "
                        + LibcCall.describe(20)); // ENOTDIR: O_PATH|O_NOFOLLOW opens the link itself
        assertThat(Mounts.isMounted(host)).isFalse();
        assertThat(host.resolve("from-image")).doesNotExist();
        assertThat(Files.readString(host.resolve("passwd"))).isEqualTo("root:x:0:0\n");
    }

    @Test
    void aLinkTheGuestPutWhereARootWasIsNotFollowedToUnmountWhatItNames() throws Exception {
        assertThat(LibcCall.mount(root.toString(), mount.at(host).toString(), null, 4096, null)).isZero();
        Path dir = tmp.resolve("bundle");
        Files.createDirectories(DirectoryVm.podDir(dir));
        Files.createSymbolicLink(DirectoryVm.podDir(dir).resolve("app"), host);

        DirectoryVm.podRootGone(dir, "app");
        assertThat(Mounts.isMounted(host)).as("the host path's own mount").isTrue();
    }
}
