package dev.kiln.api.docker;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import dev.kiln.KilnException;
import dev.kiln.api.Exchange;
import dev.kiln.api.VolumeView;
import dev.kiln.engine.Engine;
import dev.kiln.engine.SandboxVolumes;
import dev.kiln.engine.volume.Volume;

import java.util.List;
import java.util.Map;

/**
 * Docker's volume endpoints over kiln's local volumes ({@link SandboxVolumes}): create, list (filters
 * {@code dangling}, {@code name}, {@code label}, {@code driver}), inspect, remove (409 while a container uses it),
 * prune.
 */
final class DockerVolumes {
    private final Engine engine;

    DockerVolumes(Engine engine) {
        this.engine = engine;
    }

    void register(Routes r) {
        r.add("GET", "/volumes", this::list);
        r.add("POST", "/volumes/create", this::create);
        r.add("POST", "/volumes/prune", this::prune);
        r.add("GET", "/volumes/{name}", x -> x.json(VolumeView.of(engine, engine.volumes().get(x.path("name")), false)));
        r.add("DELETE", "/volumes/{name}", x -> {
            engine.volumes().remove(x.path("name"), x.flag("force"));
            x.noContent();
        });
    }

    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record VolumeCreateBody(String name, String driver, Map<String, String> driverOpts, Map<String, String> labels) {
    }

    private void create(Exchange x) {
        VolumeCreateBody body = x.body(VolumeCreateBody.class);
        if (body.driver() != null && !body.driver().isEmpty() && !body.driver().equals("local")) {
            throw KilnException.notFound("plugin \"" + body.driver() + "\" not found (kiln has the local volume "
                    + "driver only)");
        }
        x.json(201, VolumeView.of(engine, engine.volumes().create(body.name(), body.labels(), body.driverOpts()), false));
    }

    private void list(Exchange x) {
        Map<String, List<String>> filters = Filters.parse(x.query("filters"));
        Filters.only(filters, List.of("dangling", "name", "label", "driver"));
        SandboxVolumes volumes = engine.volumes();
        x.json(Map.of("Volumes", volumes.list().stream().filter(v -> matches(filters, v))
                .map(v -> VolumeView.of(engine, v, false)).toList(), "Warnings", List.of()));
    }

    private boolean matches(Map<String, List<String>> filters, Volume v) {
        return Filters.any(filters, "name", n -> v.name().contains(n))
                && Filters.all(filters, "label", l -> DockerImages.labelMatches(l, v.labels()))
                && Filters.any(filters, "driver", d -> d.equals("local"))
                && Filters.any(filters, "dangling", d -> engine.volumes().users(v.name()).isEmpty()
                == (d.equals("true") || d.equals("1")));
    }

    /** Docker 23's prune: anonymous volumes only, unless the filter {@code all=true}. */
    private void prune(Exchange x) {
        Map<String, List<String>> filters = Filters.parse(x.query("filters"));
        Filters.only(filters, List.of("label", "label!", "all"));
        boolean all = filters.getOrDefault("all", List.of()).stream().anyMatch(v -> v.equals("true") || v.equals("1"));
        Map<String, Long> removed = engine.volumes().prune(all, v ->
                Filters.all(filters, "label", l -> DockerImages.labelMatches(l, v.labels()))
                        && filters.getOrDefault("label!", List.of()).stream()
                        .noneMatch(l -> DockerImages.labelMatches(l, v.labels())));
        x.json(Map.of("VolumesDeleted", List.copyOf(removed.keySet()),
                "SpaceReclaimed", removed.values().stream().mapToLong(Long::longValue).sum()));
    }

    /** {@code system df}'s Volumes. */
    List<Map<String, Object>> usage() {
        return engine.volumes().list().stream().map(v -> VolumeView.of(engine, v, true)).toList();
    }
}
