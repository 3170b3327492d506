package dev.kiln.isolation.vm;

import dev.kiln.isolation.vm.jail.VmmIds;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Host-wide settings of the vm isolation.
 *
 * @param kernel       the guest kernel; null to find the host's cloud kernel ({@link Kernel#locate})
 * @param init         kiln-init; null to find it next to kiln-shim
 * @param stateRoot    kiln's --root: the initramfs and image-disk caches live under it
 * @param helloTimeout how long a VM may take from its start to kiln-init's HELLO before it is killed
 * @param jail         whether QEMU runs in its jail (docs/vm.md, "The VMM's jail"); off only for debugging
 *                     ({@code vmm-jail: false} in kilnd's config)
 * @param vmmUidRange  the ids the jailed VMMs run as ({@code vmm-uid-range})
 */
public record VmOptions(Path kernel, Path init, Path stateRoot, long defaultMemoryBytes, long diskSizeBytes,
                        Duration helloTimeout, boolean jail, VmmIds.Range vmmUidRange) {

    public static final long DEFAULT_MEMORY = 512L << 20;
    public static final long DEFAULT_DISK = 2L << 30;
    public static final Duration DEFAULT_HELLO_TIMEOUT = Duration.ofSeconds(60);

    public static VmOptions defaults(Path stateRoot) {
        return new VmOptions(null, null, stateRoot, DEFAULT_MEMORY, DEFAULT_DISK, DEFAULT_HELLO_TIMEOUT, true,
                VmmIds.Range.parse(VmmIds.DEFAULT_RANGE));
    }

    public VmOptions withKernel(Path file) {
        return new VmOptions(file, init, stateRoot, defaultMemoryBytes, diskSizeBytes, helloTimeout, jail, vmmUidRange);
    }

    public VmOptions withInit(Path file) {
        return new VmOptions(kernel, file, stateRoot, defaultMemoryBytes, diskSizeBytes, helloTimeout, jail, vmmUidRange);
    }

    public VmOptions withHelloTimeout(Duration timeout) {
        return new VmOptions(kernel, init, stateRoot, defaultMemoryBytes, diskSizeBytes, timeout, jail, vmmUidRange);
    }

    public VmOptions withJail(boolean on) {
        return new VmOptions(kernel, init, stateRoot, defaultMemoryBytes, diskSizeBytes, helloTimeout, on, vmmUidRange);
    }

    public VmOptions withVmmUidRange(VmmIds.Range range) {
        return new VmOptions(kernel, init, stateRoot, defaultMemoryBytes, diskSizeBytes, helloTimeout, jail, range);
    }
}
