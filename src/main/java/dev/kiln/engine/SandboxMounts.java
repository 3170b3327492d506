package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.engine.volume.MountSpec;
import dev.kiln.engine.volume.Mounts;
import dev.kiln.engine.volume.Volumes;
import dev.kiln.image.ImageConfig;
import dev.kiln.isolation.Isolation;
import dev.kiln.isolation.Mount;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A sandbox's mounts between the engine's config ({@link Mounts}) and its isolator's spec ({@link Mount} records,
 * the one shape every isolation takes): binds of host paths and of volumes' directories, and tmpfs.
 */
final class SandboxMounts {
    private SandboxMounts() {
    }

    /** At create: refuses kinds the isolation cannot mount, then makes what the mounts need on the host. */
    static SandboxConfig prepare(SandboxConfig r, Volumes volumes, ImageConfig image, Path rootfs,
                                 Isolation isolation) {
        Map<String, Object> imageVolumes = image.config() == null ? null : image.config().volumes();
        if (!isolation.volumes().contains(MountSpec.VOLUME)) {
            imageVolumes = null; // the image's VOLUME directories stay in its writable layer, as before volumes
        }
        for (MountSpec m : Mounts.of(r.mounts()).list()) {
            if (!isolation.volumes().contains(m.type())) {
                throw KilnException.invalid("the " + isolation.name() + " isolation cannot mount "
                        + (m.tmpfs() ? "a tmpfs" : m.bind() ? "a host directory" : "a volume") + " at " + m.target()
                        + (isolation.volumes().isEmpty() ? "" : " (it mounts: "
                        + String.join(", ", new java.util.TreeSet<>(isolation.volumes())) + ")"));
            }
        }
        Mounts prepared = volumes.prepare(r.mounts(), imageVolumes, rootfs);
        return prepared == null ? r : r.withMounts(prepared);
    }

    /** The isolator's mounts for a sandbox's config: no host work, called whenever a spec is made. */
    static List<Mount> of(SandboxConfig r, Volumes volumes) {
        List<Mount> out = new ArrayList<>();
        for (MountSpec m : Mounts.of(r.mounts()).list()) {
            List<String> options = new ArrayList<>();
            if (m.tmpfs()) {
                options.addAll(List.of("nosuid", "nodev"));
                options.addAll(m.tmpfsOptions().stream().filter(o -> !o.equals("rw")).toList());
                out.add(new Mount("tmpfs", "tmpfs", m.target(), options));
                continue;
            }
            options.add("rbind");
            options.add(m.propagation() == null ? "rprivate" : m.propagation());
            if (m.readOnly()) {
                options.add("ro");
            }
            String source = m.bind() ? m.source() : volumes.data(m.source()).toString();
            out.add(new Mount("bind", source, m.target(), options));
        }
        return out;
    }

    /** The sandbox's anonymous volumes, removed with it by {@code rm -v} and {@code --rm}. */
    static void removeAnonymous(Sandbox s, Volumes volumes) {
        for (MountSpec m : Mounts.of(s.config().mounts()).list()) {
            if (m.volume() && m.anonymous() && m.source() != null) {
                volumes.removeQuietly(m.source());
            }
        }
    }
}
