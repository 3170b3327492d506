package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.isolation.Mount;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.Resources;
import dev.kiln.isolation.SandboxNetwork;
import dev.kiln.isolation.SandboxSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/**
 * Firecracker has no shared filesystem: a sandbox asking it for a bind mount or a volume (both reach the isolator as
 * bind mounts of a host directory) is refused in one line at create, before any disk is made and whether or not the
 * firecracker binary is installed (it is not here, so the boot tests of Firecracker skip; this check does not need
 * it). tmpfs passes the check; QEMU takes the same binds.
 */
class FirecrackerMountsTest {

    @TempDir
    Path root;

    @Test
    void aBindMountOrVolumeOnFirecrackerIsRefusedInOneLineBeforeAnythingIsMade() throws IOException {
        VmIsolator vm = new VmIsolator(VmOptions.defaults(root.resolve("state")));
        Path shared = Files.createDirectories(root.resolve("shared"));
        Path volume = Files.createDirectories(root.resolve("volumes/data/_data"));
        for (Mount m : List.of(bind(shared, "/srv", "rw"), bind(volume, "/var/lib/data", "ro"))) {
            SandboxSpec spec = spec("fc", Firecracker.RUNTIME, List.of(m, tmpfs("/scratch")));
            KilnException e = catchThrowableOfType(KilnException.class, () -> vm.create(spec));
            assertThat(e).isNotNull();
            assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
            assertThat(e.getMessage()).contains("Firecracker has no shared filesystem").contains("--runtime qemu")
                    .doesNotContain("\n");
            assertThat(spec.dir().resolve("disk.ext4")).doesNotExist();
            assertThat(root.resolve("state/vm-disks")).doesNotExist();
        }
    }

    @Test
    void tmpfsOnFirecrackerAndBindsOnQemuPassTheCheck() throws IOException {
        VmIsolator vm = new VmIsolator(VmOptions.defaults(root.resolve("state")));
        SandboxSpec fc = spec("fc-tmpfs", Firecracker.RUNTIME, List.of(tmpfs("/scratch")));
        assertThatCode(() -> VmIsolator.checkShares(vm.vmm(fc), fc)).doesNotThrowAnyException();
        Path shared = Files.createDirectories(root.resolve("shared"));
        SandboxSpec qemu = spec("qemu", null, List.of(bind(shared, "/srv", "rw")));
        assertThatCode(() -> VmIsolator.checkShares(vm.vmm(qemu), qemu)).doesNotThrowAnyException();
        // a file is refused on either VMM: virtio-fs shares directories
        Path file = Files.writeString(root.resolve("app.conf"), "x");
        SandboxSpec withFile = spec("file", null, List.of(bind(file, "/etc/app.conf", "ro")));
        assertThat(catchThrowableOfType(KilnException.class, () -> VmIsolator.checkShares(vm.vmm(withFile), withFile))
                .getMessage()).contains("shares directories, not files");
    }

    private static Mount bind(Path source, String target, String mode) {
        return new Mount("bind", source.toString(), target, List.of("rbind", mode));
    }

    private static Mount tmpfs(String target) {
        return new Mount("tmpfs", "tmpfs", target, List.of("nosuid", "nodev", "size=1m"));
    }

    private SandboxSpec spec(String name, String runtime, List<Mount> mounts) throws IOException {
        ProcessSpec p = new ProcessSpec(List.of("true"), List.of("PATH=/bin"), "/", 0, 0, List.of(), false, false);
        return new SandboxSpec(name, name, name, p, Files.createDirectories(root.resolve("image")), false,
                Resources.UNLIMITED, Map.of(), mounts, Files.createDirectories(root.resolve("sandboxes").resolve(name)),
                SandboxNetwork.none(), null, 0, runtime);
    }
}
