package dev.kiln.api.docker;

import dev.kiln.KilnException;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Docker's default networks, shaped minimally so tools that list them keep working. kiln's Docker face does not
 * connect sandboxes to networks yet; creating, removing and connecting networks is refused.
 */
final class DockerNetworks {

    private static final List<String> NAMES = List.of("bridge", "host", "none");

    void register(Routes r) {
        r.add("GET", "/networks", x -> x.json(NAMES.stream().map(DockerNetworks::network).toList()));
        r.add("GET", "/networks/{id}", x -> x.json(find(x.path("id"))));
        r.add("POST", "/networks/create", x -> Routes.unsupported(x, "creating networks"));
        r.add("POST", "/networks/prune", x -> Routes.unsupported(x, "pruning networks"));
        r.add("DELETE", "/networks/{id}", x -> Routes.unsupported(x, "removing networks"));
        r.add("POST", "/networks/{id}/connect", x -> Routes.unsupported(x, "connecting containers to networks"));
        r.add("POST", "/networks/{id}/disconnect", x -> Routes.unsupported(x, "disconnecting containers from networks"));
        r.add("GET", "/volumes", x -> x.json(Map.of("Volumes", List.of(), "Warnings", List.of())));
        r.add("POST", "/volumes/create", x -> Routes.unsupported(x, "volumes"));
    }

    private static Map<String, Object> find(String idOrName) {
        for (String n : NAMES) {
            if (n.equals(idOrName) || id(n).startsWith(idOrName)) {
                return network(n);
            }
        }
        throw KilnException.notFound("network " + idOrName + " not found");
    }

    private static String id(String name) {
        try {
            return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                    .digest(("kiln-network-" + name).getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Map<String, Object> network(String name) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("Name", name);
        m.put("Id", id(name));
        m.put("Created", "0001-01-01T00:00:00Z");
        m.put("Scope", "local");
        m.put("Driver", name.equals("none") ? "null" : name);
        m.put("EnableIPv6", false);
        m.put("IPAM", Map.of("Driver", "default", "Options", Map.of(), "Config", List.of()));
        m.put("Internal", false);
        m.put("Attachable", false);
        m.put("Ingress", false);
        m.put("ConfigFrom", Map.of("Network", ""));
        m.put("ConfigOnly", false);
        m.put("Containers", Map.of());
        m.put("Options", Map.of());
        m.put("Labels", Map.of());
        return m;
    }
}
