package dev.kiln.api;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import dev.kiln.engine.Checkpoints;
import dev.kiln.engine.Engine;

import java.util.List;
import java.util.Map;

/**
 * Checkpoints (docs/checkpoint.md) in Docker's shapes, for the native API ({@code /v1/sandboxes/ID/checkpoints}) and
 * the Docker face ({@code /containers/ID/checkpoints}, registered by it): create (body {@code CheckpointID},
 * {@code Exit}; 201), list ({@code [{"Name"}]}), remove (204). {@code CheckpointDir} is refused: kiln keeps a
 * sandbox's checkpoints in its own directory, where its removal finds them.
 */
public final class CheckpointRoutes {
    private final Engine engine;

    public CheckpointRoutes(Engine engine) {
        this.engine = engine;
    }

    /** Adds a route (a {@link Router}'s add, or the Docker face's, which also serves it under /v1.NN). */
    public interface Routes {
        void add(String method, String template, Router.Route route);
    }

    public void register(Router r) {
        register(r::add, "/v1/sandboxes");
    }

    /** {@code prefix}: {@code /v1/sandboxes}, or {@code /containers} for the Docker face. */
    public void register(Routes r, String prefix) {
        r.add("GET", prefix + "/{id}/checkpoints", this::list);
        r.add("POST", prefix + "/{id}/checkpoints", this::create);
        r.add("DELETE", prefix + "/{id}/checkpoints/{name}", this::remove);
    }

    public void create(Exchange x) throws Exception {
        JsonNode b = x.body(JsonNode.class);
        if (!b.path("CheckpointDir").asText("").isEmpty() || !x.query("dir", "").isEmpty()) {
            throw KilnException.invalid("CheckpointDir is not supported: kiln keeps checkpoints in the sandbox's "
                    + "directory");
        }
        checkpoints().create(x.path("id"), b.path("CheckpointID").asText(null), !b.path("Exit").asBoolean(false));
        x.status(201);
    }

    public void list(Exchange x) throws Exception {
        List<Map<String, String>> out = checkpoints().list(x.path("id")).stream()
                .map(c -> Map.of("Name", c.name())).toList();
        x.json(out);
    }

    public void remove(Exchange x) throws Exception {
        checkpoints().remove(x.path("id"), x.path("name"));
        x.noContent();
    }

    private Checkpoints checkpoints() {
        return engine.sandboxes().checkpoints();
    }
}
