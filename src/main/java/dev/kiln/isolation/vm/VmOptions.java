package dev.kiln.isolation.vm;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Host-wide settings of the vm isolation.
 *
 * @param kernel       the guest kernel; null to find the host's cloud kernel ({@link Kernel#locate})
 * @param init         kiln-init; null to find it next to kiln-shim
 * @param stateRoot    kiln's --root: the initramfs and image-disk caches live under it
 * @param helloTimeout how long a VM may take from its start to kiln-init's HELLO before it is killed
 */
public record VmOptions(Path kernel, Path init, Path stateRoot, long defaultMemoryBytes, long diskSizeBytes,
                        Duration helloTimeout) {

    public static final long DEFAULT_MEMORY = 512L << 20;
    public static final long DEFAULT_DISK = 2L << 30;
    public static final Duration DEFAULT_HELLO_TIMEOUT = Duration.ofSeconds(60);

    public static VmOptions defaults(Path stateRoot) {
        return new VmOptions(null, null, stateRoot, DEFAULT_MEMORY, DEFAULT_DISK, DEFAULT_HELLO_TIMEOUT);
    }

    public VmOptions withKernel(Path file) {
        return new VmOptions(file, init, stateRoot, defaultMemoryBytes, diskSizeBytes, helloTimeout);
    }

    public VmOptions withInit(Path file) {
        return new VmOptions(kernel, file, stateRoot, defaultMemoryBytes, diskSizeBytes, helloTimeout);
    }

    public VmOptions withHelloTimeout(Duration timeout) {
        return new VmOptions(kernel, init, stateRoot, defaultMemoryBytes, diskSizeBytes, timeout);
    }
}
