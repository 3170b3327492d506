package dev.kiln.api;

import dev.kiln.KilnException;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Sandbox;
import dev.kiln.network.KilnNetwork;
import dev.kiln.network.UserNetwork;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Networks in Docker's inspect shape, for both API faces: the default bridge network (called {@code kiln} by kiln's
 * own API and {@code bridge} by the Docker face), {@code host}, {@code none}, and the user networks.
 */
public final class NetworkView {
    private NetworkView() {
    }

    private static final String UNKNOWN_TIME = "0001-01-01T00:00:00Z";

    /** Every network, the predefined ones first; {@code standardName}: what the default network is called. */
    public static List<Map<String, Object>> all(Engine engine, String standardName) {
        List<Map<String, Object>> out = new ArrayList<>();
        out.add(standard(engine, standardName));
        out.add(predefined("host"));
        out.add(predefined("none"));
        engine.networks().list().forEach(n -> out.add(user(engine, n)));
        return out;
    }

    /** The network with this name, id or unique id prefix; the default answers to kiln, bridge and default. */
    public static Map<String, Object> find(Engine engine, String ref, String standardName) {
        if (List.of(KilnNetwork.NAME, "bridge", "default").contains(ref) || id("bridge").equals(ref)) {
            return standard(engine, standardName);
        }
        for (String name : List.of("host", "none")) {
            if (name.equals(ref) || id(name).equals(ref)) {
                return predefined(name);
            }
        }
        return engine.networks().find(ref).map(n -> user(engine, n))
                .orElseThrow(() -> KilnException.notFound("network " + ref + " not found"));
    }

    /** The id the Docker face gives a predefined network (stable: a hash of its name). */
    public static String id(String predefinedName) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest(("kiln-network-" + predefinedName).getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static Map<String, Object> standard(Engine engine, String name) {
        KilnNetwork n = engine.networks().get(KilnNetwork.NAME);
        Map<String, Object> m = shape(name, id("bridge"), UNKNOWN_TIME, "bridge", n.subnet(), n.gateway(), Map.of());
        m.put("Containers", containers(engine, KilnNetwork.NAME));
        m.put("Options", Map.of("com.docker.network.bridge.name", n.bridge()));
        return m;
    }

    static Map<String, Object> predefined(String name) {
        return shape(name, id(name), UNKNOWN_TIME, name.equals("none") ? "null" : name, null, null, Map.of());
    }

    static Map<String, Object> user(Engine engine, UserNetwork n) {
        Map<String, Object> m = shape(n.name(), n.id(), n.created(), "bridge", n.subnet(), n.gateway(), n.labels());
        m.put("Internal", n.internal());
        if (n.ipRange() != null) {
            m.put("IPAM", Map.of("Driver", "default", "Options", Map.of(), "Config", List.of(Map.of("Subnet",
                    n.subnet(), "Gateway", n.gateway(), "IPRange", n.ipRange()))));
        }
        m.put("Containers", containers(engine, n.name()));
        m.put("Options", Map.of("com.docker.network.bridge.name", n.bridge()));
        return m;
    }

    private static Map<String, Object> shape(String name, String id, String created, String driver, String subnet,
                                             String gateway, Map<String, String> labels) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("Name", name);
        m.put("Id", id);
        m.put("Created", created);
        m.put("Scope", "local");
        m.put("Driver", driver);
        m.put("EnableIPv6", false);
        List<Map<String, String>> config = subnet == null ? List.of() : List.of(Map.of("Subnet", subnet,
                "Gateway", gateway));
        m.put("IPAM", Map.of("Driver", "default", "Options", Map.of(), "Config", config));
        m.put("Internal", false);
        m.put("Attachable", false);
        m.put("Ingress", false);
        m.put("ConfigFrom", Map.of("Network", ""));
        m.put("ConfigOnly", false);
        m.put("Containers", Map.of());
        m.put("Options", Map.of());
        m.put("Labels", labels);
        return m;
    }

    /** The running sandboxes on the network, by id, as Docker's endpoints. */
    private static Map<String, Object> containers(Engine engine, String network) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (Sandbox s : engine.sandboxesOn(network)) {
            engine.sandboxes().networkOn(s, network).filter(a -> a.ipAddress() != null).ifPresent(a -> {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("Name", s.name());
                e.put("EndpointID", endpointId(network, s.id()));
                e.put("MacAddress", a.macAddress() == null ? "" : a.macAddress());
                e.put("IPv4Address", a.ipAddress() + "/" + a.prefixLength());
                e.put("IPv6Address", "");
                out.put(s.id(), e);
            });
        }
        return out;
    }

    private static String endpointId(String network, String sandboxId) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest((network + "/" + sandboxId).getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
