package dev.kiln.isolation.standard;

import dev.kiln.isolation.Isolators;
import dev.kiln.isolation.oci.OciIsolator;
import dev.kiln.isolation.oci.OciRuntime;
import dev.kiln.isolation.vm.VmIsolator;
import dev.kiln.isolation.vm.VmOptions;
import dev.kiln.isolation.vm.jail.VmmIds;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * kiln's own isolators, as kilnd registers them: {@code container} (runc), {@code gvisor} (runsc), {@code vm} (QEMU,
 * Firecracker). The one place that names the implementations, so neither the engine nor the API imports them; its
 * own package so that {@code isolation} (the interface) does not depend on its implementations.
 */
public final class StandardIsolators {

    /**
     * The host-wide settings they take.
     *
     * @param root          kiln's --root (the vm isolation's kernel and disk caches)
     * @param runRoot       kiln's --run-root (the OCI runtimes' state)
     * @param runscPlatform gVisor's {@code --platform} ({@code ptrace}, {@code systrap}, {@code kvm})
     * @param kernel        the vm isolation's default kernel; null for the host's newest cloud kernel
     * @param runtimePaths  runtime binaries at paths of their own, by name ({@code runtime-paths} in the config)
     * @param vmmJail       QEMU in its jail ({@code vmm-jail}; false only for debugging)
     * @param vmmUidRange   the ids jailed VMMs run as ({@code vmm-uid-range}); null for the default
     * @param vmSnapshot    QEMU VMs start from a snapshot of a booted guest ({@code vm-snapshot})
     */
    public record Options(Path root, Path runRoot, String runscPlatform, Path kernel, Map<String, Path> runtimePaths,
                          boolean vmmJail, String vmmUidRange, boolean vmSnapshot) {
        public Options {
            runtimePaths = Map.copyOf(runtimePaths);
        }
    }

    private StandardIsolators() {
    }

    public static Isolators create(Options o) {
        return new Isolators(List.of(
                new OciIsolator(OciRuntime.RUNC, o.runRoot().resolve("runc"), List.of(), o.runtimePaths()),
                new OciIsolator(OciRuntime.RUNSC, o.runRoot().resolve("runsc"),
                        List.of("--platform=" + o.runscPlatform()), o.runtimePaths()),
                new VmIsolator(VmOptions.defaults(o.root()).withKernel(o.kernel())
                        .withRuntimePaths(o.runtimePaths()).withJail(o.vmmJail()).withSnapshot(o.vmSnapshot())
                        .withVmmUidRange(VmmIds.Range.parse(o.vmmUidRange() != null ? o.vmmUidRange()
                                : VmmIds.DEFAULT_RANGE)))));
    }
}
