package dev.kiln.isolation;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Everything an {@link Isolator} needs to create a sandbox, and nothing about images: the root filesystem arrives as
 * mounts prepared by the engine ({@code rootfs}: the read-only image tree; {@code upper}/{@code work}: the sandbox's
 * writable overlay layer).
 *
 * @param dir the sandbox's own directory (bundle, logs, sockets) under the run root
 * @param network how the sandbox is networked (never null; {@link SandboxNetwork#none()} for loopback only)
 * @param kernel  vm only: the guest kernel asked for with {@code --kernel}; null for the isolation's default
 * @param diskSize vm only: bytes of the writable disk ({@code --disk-size}); 0 for the isolation's default
 * @param runtime  the runtime asked for with {@code --runtime} (for vm: {@code firecracker} picks Firecracker as the
 *                 VMM, anything else QEMU); null for the isolation's default
 * @param settings the {@code docker run} flags past the first set ({@link RunSettings}); never null
 * @param disposable the sandbox goes with its run's end ({@code --rm}): its writable layer need not survive a crash of
 *                   the host, so an isolator may skip syncing it (overlayfs's {@code volatile}, as podman does)
 */
public record SandboxSpec(String id, String name, String hostname, ProcessSpec process, Path imageRootfs,
                          boolean readOnly, Resources resources, Map<String, String> labels, List<Mount> extraMounts,
                          Path dir, SandboxNetwork network, Path kernel, long diskSize, String runtime,
                          RunSettings settings, boolean disposable) {

    public SandboxSpec {
        settings = settings == null ? RunSettings.NONE : settings;
        labels = Map.copyOf(labels);
        extraMounts = List.copyOf(extraMounts);
        network = network == null ? SandboxNetwork.none() : network;
        if (hostname == null || hostname.isBlank()) {
            hostname = id.length() > 12 ? id.substring(0, 12) : id;
        }
    }

    /**
     * Where the main process's output goes, Docker's json-file log ({@link LogReader}): chosen by the engine, which
     * reads it back for {@code logs}, and written by the isolator's monitor.
     */
    public Path log() {
        // --log-driver none: the output goes to attached clients only
        return "none".equals(settings.logDriver()) ? Path.of("/dev/null") : dir.resolve("log.json");
    }

    /** The network namespace to join (made by the engine), or null when the runtime makes a fresh one. */
    public Path netns() {
        return network.netns();
    }

    /** A sandbox that is kept after its run ends (no {@code --rm}). */
    public SandboxSpec(String id, String name, String hostname, ProcessSpec process, Path imageRootfs,
                       boolean readOnly, Resources resources, Map<String, String> labels, List<Mount> extraMounts,
                       Path dir, SandboxNetwork network, Path kernel, long diskSize, String runtime,
                       RunSettings settings) {
        this(id, name, hostname, process, imageRootfs, readOnly, resources, labels, extraMounts, dir, network, kernel,
                diskSize, runtime, settings, false);
    }

    /** A sandbox with none of {@link RunSettings}'s flags. */
    public SandboxSpec(String id, String name, String hostname, ProcessSpec process, Path imageRootfs,
                       boolean readOnly, Resources resources, Map<String, String> labels, List<Mount> extraMounts,
                       Path dir, SandboxNetwork network, Path kernel, long diskSize, String runtime) {
        this(id, name, hostname, process, imageRootfs, readOnly, resources, labels, extraMounts, dir, network, kernel,
                diskSize, runtime, RunSettings.NONE);
    }

    /** A sandbox on the isolation's default runtime (for vm: QEMU). */
    public SandboxSpec(String id, String name, String hostname, ProcessSpec process, Path imageRootfs,
                       boolean readOnly, Resources resources, Map<String, String> labels, List<Mount> extraMounts,
                       Path dir, SandboxNetwork network, Path kernel, long diskSize) {
        this(id, name, hostname, process, imageRootfs, readOnly, resources, labels, extraMounts, dir, network, kernel,
                diskSize, null);
    }

    /** A sandbox with the isolation's default kernel and disk (the vm isolation's settings). */
    public SandboxSpec(String id, String name, String hostname, ProcessSpec process, Path imageRootfs,
                       boolean readOnly, Resources resources, Map<String, String> labels, List<Mount> extraMounts,
                       Path dir, SandboxNetwork network) {
        this(id, name, hostname, process, imageRootfs, readOnly, resources, labels, extraMounts, dir, network, null, 0);
    }

    /** A sandbox with a network namespace of its own (loopback only). */
    public SandboxSpec(String id, String name, String hostname, ProcessSpec process, Path imageRootfs,
                       boolean readOnly, Resources resources, Map<String, String> labels, List<Mount> extraMounts,
                       Path dir) {
        this(id, name, hostname, process, imageRootfs, readOnly, resources, labels, extraMounts, dir,
                SandboxNetwork.none());
    }
}
