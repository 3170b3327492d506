package dev.kiln.api.docker;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Sandbox;
import dev.kiln.engine.volume.MountSpec;
import dev.kiln.engine.volume.MountSyntax;
import dev.kiln.engine.volume.Mounts;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Docker's mount fields ↔ kiln's {@link Mounts}: {@code HostConfig.Binds} ({@code -v}), {@code HostConfig.Mounts}
 * ({@code --mount}), {@code HostConfig.Tmpfs} ({@code --tmpfs}) and {@code Config.Volumes} on create; the same fields
 * and the {@code Mounts} list of inspect on the way back.
 */
final class DockerMounts {
    private DockerMounts() {
    }

    static Mounts translate(ContainerCreateBody body, ContainerCreateBody.HostConfig host) {
        List<MountSpec> structured = new ArrayList<>();
        if (host.mounts() != null) {
            for (JsonNode m : host.mounts()) {
                structured.add(mount(m));
            }
        }
        List<String> anonymous = body.volumes() == null ? null : new ArrayList<>(body.volumes().keySet());
        return MountSyntax.parse(host.binds(), null, host.tmpfs(), structured, anonymous);
    }

    /** One {@code HostConfig.Mounts} entry. */
    private static MountSpec mount(JsonNode m) {
        String context = m.toString();
        for (String key : iterable(m.fieldNames())) {
            if (!List.of("Type", "Source", "Target", "ReadOnly", "Consistency", "BindOptions", "VolumeOptions",
                    "TmpfsOptions").contains(key)) {
                throw KilnException.invalid("HostConfig.Mounts: kiln does not support " + key + " (in " + context
                        + ")");
            }
        }
        JsonNode bind = m.path("BindOptions");
        if (bind.path("NonRecursive").asBoolean(false) || bind.path("ReadOnlyNonRecursive").asBoolean(false)) {
            throw KilnException.invalid("HostConfig.Mounts: kiln binds recursively only (NonRecursive in " + context
                    + ")");
        }
        JsonNode volume = m.path("VolumeOptions");
        JsonNode driver = volume.path("DriverConfig");
        if (!driver.path("Name").asText("local").isEmpty() && !driver.path("Name").asText("local").equals("local")) {
            throw KilnException.invalid("volume driver " + KilnException.quote(driver.path("Name").asText())
                    + " is not kiln's: kiln has the local driver only");
        }
        if (driver.path("Options").size() > 0) {
            throw KilnException.invalid("HostConfig.Mounts: kiln's local driver takes no DriverConfig.Options (in "
                    + context + ")");
        }
        Map<String, String> labels = new LinkedHashMap<>();
        volume.path("Labels").fields().forEachRemaining(e -> labels.put(e.getKey(), e.getValue().asText()));
        JsonNode tmpfs = m.path("TmpfsOptions");
        if (tmpfs.has("SizeBytes") && !tmpfs.path("SizeBytes").canConvertToLong()) {
            throw KilnException.invalid("TmpfsOptions.SizeBytes must be a number of bytes (in " + context + ")");
        }
        if (tmpfs.has("Mode") && !tmpfs.path("Mode").canConvertToInt()) {
            throw KilnException.invalid("TmpfsOptions.Mode must be a number (in " + context + ")");
        }
        return MountSyntax.structured(m.path("Type").asText(null), m.path("Source").asText(null),
                m.path("Target").asText(null), m.path("ReadOnly").asBoolean(false),
                bind.path("Propagation").asText(null), volume.path("NoCopy").asBoolean(false), labels,
                tmpfs.has("SizeBytes") ? tmpfs.path("SizeBytes").asLong() : null,
                tmpfs.has("Mode") ? tmpfs.path("Mode").asInt() : null, context);
    }

    private static <T> Iterable<T> iterable(java.util.Iterator<T> it) {
        return () -> it;
    }

    /** HostConfig.Binds as the client sent them ({@code -v}), or null. */
    static List<String> binds(Sandbox s) {
        List<String> out = Mounts.of(s.config().mounts()).from("bind").stream()
                .map(m -> (m.anonymous() ? "" : m.source() + ":") + m.target()
                        + (m.mode().isEmpty() ? "" : ":" + m.mode()))
                .toList();
        return out.isEmpty() ? null : out;
    }

    /** HostConfig.Mounts ({@code --mount}), or null. */
    static List<Map<String, Object>> mounts(Sandbox s) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (MountSpec m : Mounts.of(s.config().mounts()).from("mount")) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("Type", m.type());
            if (m.source() != null) {
                e.put("Source", m.source());
            }
            e.put("Target", m.target());
            if (m.readOnly()) {
                e.put("ReadOnly", true);
            }
            if (m.bind()) {
                e.put("BindOptions", Map.of("Propagation", m.propagation()));
            } else if (m.volume() && (m.noCopy() || !m.labels().isEmpty())) {
                e.put("VolumeOptions", Map.of("NoCopy", m.noCopy(), "Labels", m.labels()));
            } else if (m.tmpfs()) {
                Map<String, Object> t = new LinkedHashMap<>();
                for (String o : m.tmpfsOptions()) {
                    if (o.startsWith("size=")) t.put("SizeBytes", Long.parseLong(o.substring(5)));
                    if (o.startsWith("mode=")) t.put("Mode", Integer.parseInt(o.substring(5), 8));
                }
                e.put("TmpfsOptions", t);
            }
            out.add(e);
        }
        return out.isEmpty() ? null : out;
    }

    /** HostConfig.Tmpfs ({@code --tmpfs}), or null. */
    static Map<String, String> tmpfs(Sandbox s) {
        Map<String, String> out = new LinkedHashMap<>();
        Mounts.of(s.config().mounts()).from("tmpfs").forEach(m -> out.put(m.target(), m.mode()));
        return out.isEmpty() ? null : out;
    }

    /** Config.Volumes: the anonymous volumes asked for with it and the image's. */
    static Map<String, Object> volumes(Sandbox s) {
        Map<String, Object> out = new LinkedHashMap<>();
        Mounts.of(s.config().mounts()).filter(m -> m.origin().equals("volume") || m.origin().equals("image"))
                .forEach(m -> out.put(m.target(), Map.of()));
        return out.isEmpty() ? null : out;
    }
}
