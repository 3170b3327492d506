package dev.kiln.api.docker;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import dev.kiln.api.Exchange;
import dev.kiln.api.NetworkView;
import dev.kiln.engine.Engine;
import dev.kiln.network.Networks;
import dev.kiln.network.UserNetwork;

import java.io.IOException;
import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Docker's network endpoints over kiln's networks: {@code bridge} is the kiln network, {@code host} and {@code none}
 * the modes of those names, and the user networks are kiln's ({@code kiln network create}). Connecting a running
 * container to another network is refused: a sandbox is on one network, chosen at create.
 */
final class DockerNetworks {

    private final Engine engine;

    DockerNetworks(Engine engine) {
        this.engine = engine;
    }

    void register(Routes r) {
        r.add("GET", "/networks", this::list);
        r.add("GET", "/networks/{id}", x -> x.json(NetworkView.find(engine, x.path("id"), "bridge")));
        r.add("POST", "/networks/create", this::create);
        r.add("POST", "/networks/prune", x -> x.json(Map.of("NetworksDeleted", engine.pruneNetworks())));
        r.add("DELETE", "/networks/{id}", this::remove);
        r.add("POST", "/networks/{id}/connect", x -> Routes.unsupported(x, "connecting containers to networks"));
        r.add("POST", "/networks/{id}/disconnect", x -> Routes.unsupported(x, "disconnecting containers from networks"));
        r.add("GET", "/volumes", x -> x.json(Map.of("Volumes", List.of(), "Warnings", List.of())));
        r.add("POST", "/volumes/create", x -> Routes.unsupported(x, "volumes"));
    }

    private void list(Exchange x) {
        Map<String, List<String>> filters = Filters.parse(x.query("filters"));
        Filters.only(filters, List.of("name", "id", "label", "driver", "type"));
        x.json(NetworkView.all(engine, "bridge").stream().filter(n -> {
            @SuppressWarnings("unchecked")
            Map<String, String> labels = (Map<String, String>) n.get("Labels");
            boolean builtin = !engine.networks().find((String) n.get("Id")).isPresent();
            return Filters.any(filters, "name", v -> ((String) n.get("Name")).contains(v))
                    && Filters.any(filters, "id", v -> ((String) n.get("Id")).startsWith(v))
                    && Filters.any(filters, "label", v -> DockerImages.labelMatches(v, labels))
                    && Filters.any(filters, "driver", v -> v.equals(n.get("Driver")))
                    && Filters.any(filters, "type", v -> v.equals(builtin ? "builtin" : "custom"));
        }).toList());
    }

    /** Docker's NetworkCreateRequest; what kiln's networks cannot be (IPv6, other drivers, ranges) is refused. */
    private void create(Exchange x) throws IOException {
        JsonNode body;
        try (InputStream in = x.body()) {
            body = DockerApi.JSON.readTree(in);
        }
        if (body == null || !body.isObject()) {
            throw KilnException.invalid("the request body must be a JSON object");
        }
        String driver = body.path("Driver").asText("");
        if (!driver.isEmpty() && !driver.equals("bridge")) {
            throw KilnException.notFound("plugin \"" + driver + "\" not found (kiln networks use the bridge driver)");
        }
        if (body.path("EnableIPv6").asBoolean(false)) {
            throw KilnException.invalid("kiln does not support IPv6 networks yet");
        }
        if (body.path("Internal").asBoolean(false)) {
            throw KilnException.invalid("kiln does not support internal networks yet");
        }
        JsonNode configs = body.path("IPAM").path("Config");
        if (configs.size() > 1) {
            throw KilnException.invalid("kiln networks have one IPv4 subnet: give at most one IPAM config");
        }
        JsonNode config = configs.path(0);
        if (!config.path("IPRange").asText("").isEmpty() || config.path("AuxiliaryAddresses").size() > 0) {
            throw KilnException.invalid("kiln does not support IPRange or AuxiliaryAddresses yet");
        }
        Map<String, String> labels = new LinkedHashMap<>();
        body.path("Labels").fields().forEachRemaining(e -> labels.put(e.getKey(), e.getValue().asText()));
        UserNetwork n = engine.networks().create(body.path("Name").asText(null), text(config, "Subnet"),
                text(config, "Gateway"), labels);
        x.json(201, Map.of("Id", n.id(), "Warning", ""));
    }

    private void remove(Exchange x) {
        String ref = x.path("id");
        Object name = NetworkView.find(engine, ref, "bridge").get("Name");
        if (Networks.predefined((String) name)) {
            // Docker's answer for its predefined networks: forbidden, not merely refused
            x.json(403, Map.of("message", name + " is a pre-defined network and cannot be removed"));
            return;
        }
        engine.removeNetwork(ref);
        x.noContent();
    }

    private static String text(JsonNode node, String field) {
        String v = node.path(field).asText("");
        return v.isEmpty() ? null : v;
    }
}
