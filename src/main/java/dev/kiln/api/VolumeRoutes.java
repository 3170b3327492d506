package dev.kiln.api;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.engine.Engine;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The native volume API under {@code /v1/volumes}, in Docker's shapes ({@link VolumeView}): create (body
 * {@code {"name", "labels", "options"}}), list (with sizes and users), inspect, remove (409 while in use), prune
 * ({@code ?all=true}: named ones too).
 */
public final class VolumeRoutes {
    private final Engine engine;

    public VolumeRoutes(Engine engine) {
        this.engine = engine;
    }

    public void register(Router r) {
        r.add("GET", "/v1/volumes", x -> x.json(engine.volumes().list().stream()
                .map(v -> VolumeView.of(engine, v, true)).toList()));
        r.add("POST", "/v1/volumes", x -> {
            JsonNode body = x.body(JsonNode.class);
            x.json(201, VolumeView.of(engine, engine.volumes().create(body.path("name").asText(null),
                    strings(body.path("labels")), strings(body.path("options"))), false));
        });
        r.add("POST", "/v1/volumes/prune", x -> x.json(Map.of("removed",
                engine.volumes().prune(x.flag("all"), v -> true))));
        r.add("GET", "/v1/volumes/{name}", x -> x.json(VolumeView.of(engine, engine.volumes().get(x.path("name")),
                true)));
        r.add("DELETE", "/v1/volumes/{name}", x -> {
            engine.volumes().remove(x.path("name"), x.flag("force"));
            x.noContent();
        });
    }

    private static Map<String, String> strings(JsonNode node) {
        Map<String, String> out = new LinkedHashMap<>();
        node.fields().forEachRemaining(e -> out.put(e.getKey(), e.getValue().asText()));
        return out;
    }
}
