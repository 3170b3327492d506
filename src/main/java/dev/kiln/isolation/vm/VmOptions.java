package dev.kiln.isolation.vm;

import dev.kiln.isolation.vm.jail.VmmIds;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * Host-wide settings of the vm isolation.
 *
 * @param kernel       the guest kernel; null to find the host's cloud kernel ({@link Kernel#locate})
 * @param init         kiln-init; null to find it next to kiln-shim
 * @param stateRoot    kiln's --root: the initramfs and image-disk caches live under it
 * @param helloTimeout how long a VM may take from its start to kiln-init's HELLO before it is killed
 * @param runtimePaths where the VMM binaries are when not on PATH, by name ({@code runtime-paths} in kilnd's config)
 * @param jail         whether QEMU runs in its jail (docs/vm.md, "The VMM's jail"); off only for debugging
 *                     ({@code vmm-jail: false} in kilnd's config; {@code --security-opt jail=off} per sandbox)
 * @param vmmUidRange  the ids the jailed VMMs run as ({@code vmm-uid-range})
 * @param snapshot     QEMU VMs start by restoring a snapshot of a booted guest, made once per VM shape
 *                     ({@code vm-snapshot} in kilnd's config; docs/vm.md, "Snapshot start")
 */
public record VmOptions(Path kernel, Path init, Path stateRoot, long defaultMemoryBytes, long diskSizeBytes,
                        Duration helloTimeout, Map<String, Path> runtimePaths, boolean jail,
                        VmmIds.Range vmmUidRange, boolean snapshot) {

    public static final long DEFAULT_MEMORY = 512L << 20;
    public static final long DEFAULT_DISK = 2L << 30;
    public static final Duration DEFAULT_HELLO_TIMEOUT = Duration.ofSeconds(60);

    public VmOptions {
        runtimePaths = Map.copyOf(runtimePaths);
    }

    public static VmOptions defaults(Path stateRoot) {
        return new VmOptions(null, null, stateRoot, DEFAULT_MEMORY, DEFAULT_DISK, DEFAULT_HELLO_TIMEOUT, Map.of(),
                true, VmmIds.Range.parse(VmmIds.DEFAULT_RANGE), false);
    }

    public VmOptions withKernel(Path file) {
        return new VmOptions(file, init, stateRoot, defaultMemoryBytes, diskSizeBytes, helloTimeout, runtimePaths,
                jail, vmmUidRange, snapshot);
    }

    public VmOptions withHelloTimeout(Duration timeout) {
        return new VmOptions(kernel, init, stateRoot, defaultMemoryBytes, diskSizeBytes, timeout, runtimePaths,
                jail, vmmUidRange, snapshot);
    }

    public VmOptions withRuntimePaths(Map<String, Path> paths) {
        return new VmOptions(kernel, init, stateRoot, defaultMemoryBytes, diskSizeBytes, helloTimeout, paths,
                jail, vmmUidRange, snapshot);
    }

    public VmOptions withJail(boolean on) {
        return new VmOptions(kernel, init, stateRoot, defaultMemoryBytes, diskSizeBytes, helloTimeout, runtimePaths,
                on, vmmUidRange, snapshot);
    }

    public VmOptions withVmmUidRange(VmmIds.Range range) {
        return new VmOptions(kernel, init, stateRoot, defaultMemoryBytes, diskSizeBytes, helloTimeout, runtimePaths,
                jail, range, snapshot);
    }

    public VmOptions withSnapshot(boolean on) {
        return new VmOptions(kernel, init, stateRoot, defaultMemoryBytes, diskSizeBytes, helloTimeout, runtimePaths,
                jail, vmmUidRange, on);
    }
}
