package dev.kiln.api;

import dev.kiln.engine.Engine;
import dev.kiln.engine.volume.Volume;

import java.time.Instant;
import dev.kiln.engine.Sandbox;
import dev.kiln.engine.volume.MountSpec;
import dev.kiln.engine.volume.Mounts;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A volume in Docker's shape, for both faces ({@code /v1/volumes} and Docker's {@code /volumes}). */
public final class VolumeView {
    private VolumeView() {
    }

    /** Docker's Volume object; with {@code usage}, its size and reference count ({@code system df}). */
    public static Map<String, Object> of(Engine engine, Volume v, boolean usage) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("CreatedAt", Instant.ofEpochMilli(v.createdAt()).toString());
        m.put("Driver", "local");
        m.put("Labels", v.labels());
        m.put("Mountpoint", engine.volumes().data(v.name()).toString());
        m.put("Name", v.name());
        m.put("Options", v.options());
        m.put("Scope", "local");
        if (usage) {
            m.put("UsageData", Map.of("Size", engine.volumes().size(v.name()),
                    "RefCount", engine.volumes().users(v.name()).size()));
        }
        return m;
    }

    /** Inspect's {@code Mounts}: one entry per mount, as Docker shows them. */
    public static List<Map<String, Object>> mounts(Engine engine, Sandbox s) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (MountSpec m : Mounts.of(s.config().mounts()).list()) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("Type", m.type());
            if (m.volume()) {
                e.put("Name", m.source());
                e.put("Source", engine.volumes().data(m.source()).toString());
            } else {
                e.put("Source", m.source() == null ? "" : m.source());
            }
            e.put("Destination", m.target());
            if (m.volume()) {
                e.put("Driver", "local");
            }
            // as Docker shows them: a volume's mode is "z" unless -v gave one; a --mount bind's is ""
            e.put("Mode", m.volume() && m.mode().isEmpty() ? "z" : m.origin().equals("bind") ? m.mode() : "");
            e.put("RW", !m.readOnly());
            e.put("Propagation", m.bind() ? m.propagation() : "");
            out.add(e);
        }
        return out;
    }

}
