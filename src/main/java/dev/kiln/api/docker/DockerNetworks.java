package dev.kiln.api.docker;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import dev.kiln.KilnException;
import dev.kiln.api.Exchange;
import dev.kiln.api.NetworkView;
import dev.kiln.engine.Engine;
import dev.kiln.network.Networks;
import dev.kiln.network.UserNetwork;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Docker's network endpoints over kiln's networks: {@code bridge} is the kiln network, {@code host} and {@code none}
 * the modes of those names, and the user networks are kiln's ({@code kiln network create}). A container or gVisor
 * sandbox joins more networks with connect (a further interface in its namespace, see engine.Sandboxes#connect).
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
        r.add("POST", "/networks/{id}/connect", this::connect);
        r.add("POST", "/networks/{id}/disconnect", this::disconnect);
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
                    && Filters.all(filters, "label", v -> DockerImages.labelMatches(v, labels))
                    && Filters.any(filters, "driver", v -> v.equals(n.get("Driver")))
                    && Filters.any(filters, "type", v -> v.equals(builtin ? "builtin" : "custom"));
        }).toList());
    }

    /** Docker's NetworkCreateRequest, typed (see {@link dev.kiln.api.JsonBody}). */
    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record NetworkCreateBody(String name, String driver, @JsonProperty("EnableIPv6") Boolean enableIpv6,
                             boolean internal, @JsonProperty("IPAM") Ipam ipam, Map<String, String> labels) {
    }

    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record Ipam(List<IpamConfig> config) {
    }

    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record IpamConfig(String subnet, @JsonProperty("IPRange") String ipRange, String gateway,
                      Map<String, String> auxiliaryAddresses) {
    }

    /** Docker's NetworkCreateRequest; what kiln's networks cannot be (IPv6, other drivers, ranges) is refused. */
    private void create(Exchange x) {
        NetworkCreateBody body = x.body(NetworkCreateBody.class);
        String driver = body.driver() == null ? "" : body.driver();
        if (!driver.isEmpty() && !driver.equals("bridge")) {
            throw KilnException.notFound("plugin \"" + driver + "\" not found (kiln networks use the bridge driver)");
        }
        if (Boolean.TRUE.equals(body.enableIpv6())) {
            throw KilnException.invalid("kiln does not support IPv6 networks yet");
        }
        List<IpamConfig> configs = body.ipam() == null || body.ipam().config() == null ? List.of()
                : body.ipam().config();
        if (configs.size() > 1) {
            throw KilnException.invalid("kiln networks have one IPv4 subnet: give at most one IPAM config");
        }
        IpamConfig config = configs.isEmpty() || configs.getFirst() == null
                ? new IpamConfig(null, null, null, null) : configs.getFirst();
        if (config.auxiliaryAddresses() != null && !config.auxiliaryAddresses().isEmpty()) {
            throw KilnException.invalid("kiln does not support AuxiliaryAddresses yet");
        }
        if (text(config.ipRange()) != null && text(config.subnet()) == null) {
            throw KilnException.invalid("IPRange needs a Subnet (--subnet) to lie in");
        }
        Map<String, String> labels = new LinkedHashMap<>();
        if (body.labels() != null) {
            body.labels().forEach((k, v) -> labels.put(k, v == null ? "" : v));
        }
        UserNetwork n = engine.networks().create(body.name(), text(config.subnet()), text(config.gateway()), labels,
                body.internal(), text(config.ipRange()));
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

    /** Docker's NetworkConnectRequest: the container, and its endpoint's Aliases and IPv4 address there. */
    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record ConnectBody(String container, ContainerCreateBody.EndpointSettings endpointConfig, boolean force) {
    }

    private void connect(Exchange x) {
        ConnectBody body = x.body(ConnectBody.class);
        String name = (String) NetworkView.find(engine, x.path("id"), "bridge").get("Name");
        if (text(body.container()) == null) {
            throw KilnException.invalid("Container is required");
        }
        if (name.equals("host") || name.equals("none")) {
            throw KilnException.invalid("a container cannot be connected to network " + name + " (it is a mode, "
                    + "chosen at create with --network)");
        }
        ContainerCreateBody.EndpointSettings e = body.endpointConfig();
        String ip = null;
        if (e != null) {
            List<String> refused = new java.util.ArrayList<>();
            if (e.links() != null && !e.links().isEmpty()) {
                refused.add("--link");
            }
            if (text(e.macAddress()) != null) {
                refused.add("MacAddress");
            }
            if (e.driverOpts() != null && !e.driverOpts().isEmpty()) {
                refused.add("DriverOpts");
            }
            if (e.ipamConfig() != null) {
                ip = text(e.ipamConfig().ipv4Address());
                if (text(e.ipamConfig().ipv6Address()) != null) {
                    refused.add("--ip6");
                }
            }
            if (!refused.isEmpty()) {
                throw KilnException.invalid("kiln does not support " + String.join(", ", refused)
                        + " on network connect");
            }
        }
        engine.sandboxes().connect(body.container(), name, e == null ? null : e.aliases(), ip);
        x.status(200);
    }

    private void disconnect(Exchange x) {
        ConnectBody body = x.body(ConnectBody.class);
        String name = (String) NetworkView.find(engine, x.path("id"), "bridge").get("Name");
        if (text(body.container()) == null) {
            throw KilnException.invalid("Container is required");
        }
        engine.sandboxes().disconnect(body.container(), name);
        x.status(200);
    }

    private static String text(String v) {
        return v == null || v.isEmpty() ? null : v;
    }
}
