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
 */
public record SandboxSpec(String id, String name, String hostname, ProcessSpec process, Path imageRootfs,
                          boolean readOnly, Resources resources, Map<String, String> labels, List<Mount> extraMounts,
                          Path dir) {

    public SandboxSpec {
        labels = Map.copyOf(labels);
        extraMounts = List.copyOf(extraMounts);
    }
}
