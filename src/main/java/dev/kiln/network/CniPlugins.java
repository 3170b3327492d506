package dev.kiln.network;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Runs CNI reference plugins as the CNI spec (1.0) says: the plugin binary from {@code CNI_PATH}, the operation in
 * {@code CNI_COMMAND}, the network config on stdin, and for a conflist each plugin in turn with the previous one's
 * result ({@code prevResult}); DEL in reverse order. {@code runtimeConfig} carries the port mappings to plugins that
 * declare the {@code portMappings} capability.
 */
final class CniPlugins {

    static final Path CNI_PATH = Path.of("/usr/lib/cni");
    private static final ObjectMapper JSON = new ObjectMapper();

    private CniPlugins() {
    }

    /** ADD through every plugin of {@code conflist}; returns the last plugin's result. */
    static JsonNode add(ObjectNode conflist, String containerId, Path netns, String ifname, List<PortMapping> ports) {
        return add(conflist, containerId, netns, ifname, ports, null);
    }

    /**
     * ADD asking the IPAM plugin for {@code ip} ({@code --ip}; null for the next free one): host-local takes it from
     * the config's {@code args.cni.ips}, which the bridge plugin hands on to it.
     */
    static JsonNode add(ObjectNode conflist, String containerId, Path netns, String ifname, List<PortMapping> ports,
                        String ip) {
        JsonNode prev = null;
        for (JsonNode plugin : plugins(conflist, ports)) {
            ObjectNode config = config(conflist, plugin, prev, ports);
            if (ip != null && plugin.has("ipam")) {
                config.putObject("args").putObject("cni").putArray("ips").add(ip);
            }
            prev = invoke("ADD", config, containerId, netns, ifname);
        }
        return prev;
    }

    /** CHECK through every plugin against the recorded result. */
    static void check(ObjectNode conflist, String containerId, Path netns, String ifname, List<PortMapping> ports,
                      JsonNode result) {
        for (JsonNode plugin : plugins(conflist, ports)) {
            invoke("CHECK", config(conflist, plugin, result, ports), containerId, netns, ifname);
        }
    }

    /** DEL through every plugin in reverse order; all are tried, the first failure is thrown at the end. */
    static void del(ObjectNode conflist, String containerId, Path netns, String ifname, List<PortMapping> ports,
                    JsonNode result) {
        KilnException first = null;
        for (JsonNode plugin : plugins(conflist, ports).reversed()) {
            try {
                invoke("DEL", config(conflist, plugin, result, ports), containerId, netns, ifname);
            } catch (KilnException e) {
                first = first == null ? e : first;
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /**
     * The plugins to run for a sandbox publishing {@code ports}: a plugin that exists only for port mappings (the
     * {@code portMappings} capability: portmap) is left out when there are none — it would do nothing but cost an
     * exec and iptables calls at every start and exit. ADD, CHECK and DEL see the same recorded ports, so they agree.
     */
    private static List<JsonNode> plugins(ObjectNode conflist, List<PortMapping> ports) {
        List<JsonNode> out = new ArrayList<>();
        for (JsonNode plugin : conflist.path("plugins")) {
            if (ports.isEmpty() && plugin.path("capabilities").path("portMappings").asBoolean(false)) {
                continue;
            }
            out.add(plugin);
        }
        return out;
    }

    /** A single-plugin ADD (e.g. loopback on {@code lo}). */
    static JsonNode addOne(ObjectNode config, String containerId, Path netns, String ifname) {
        return invoke("ADD", config, containerId, netns, ifname);
    }

    private static ObjectNode config(ObjectNode conflist, JsonNode plugin, JsonNode prev, List<PortMapping> ports) {
        ObjectNode conf = plugin.deepCopy();
        conf.put("cniVersion", conflist.path("cniVersion").asText());
        conf.put("name", conflist.path("name").asText());
        if (prev != null) {
            conf.set("prevResult", prev);
        }
        if (plugin.path("capabilities").path("portMappings").asBoolean(false) && !ports.isEmpty()) {
            ArrayNode mappings = conf.putObject("runtimeConfig").putArray("portMappings");
            for (PortMapping p : ports) {
                ObjectNode m = mappings.addObject();
                m.put("hostPort", p.hostPort());
                m.put("containerPort", p.containerPort());
                m.put("protocol", p.protocol());
                if (!p.hostIp().isEmpty()) {
                    m.put("hostIP", p.hostIp());
                }
            }
        }
        return conf;
    }

    private static JsonNode invoke(String command, ObjectNode config, String containerId, Path netns, String ifname) {
        String type = config.path("type").asText();
        Path binary = CNI_PATH.resolve(type);
        if (!Files.isExecutable(binary)) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "the CNI plugin " + binary + " is missing "
                    + "(apt-get install containernetworking-plugins)");
        }
        String stdin;
        try {
            stdin = JSON.writeValueAsString(config);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot write the CNI config: " + e.getMessage(), e);
        }
        Exec r = Exec.run(List.of(binary.toString()), stdin, Map.of("CNI_COMMAND", command,
                "CNI_CONTAINERID", containerId, "CNI_NETNS", netns.toString(), "CNI_IFNAME", ifname,
                "CNI_PATH", CNI_PATH.toString()));
        if (r.code() != 0) {
            String msg = r.firstLine();
            try {
                JsonNode err = JSON.readTree(r.out());
                msg = err.path("msg").asText(msg) + (err.hasNonNull("details") ? " (" + err.path("details").asText()
                        + ")" : "");
            } catch (IOException | RuntimeException ignored) {
                // not a CNI error document: the first line says it
            }
            throw new KilnException(KilnException.Kind.INTERNAL, "CNI " + type + " " + command + " failed: " + msg);
        }
        if (!command.equals("ADD") || r.out().isBlank()) {
            return null;
        }
        try {
            return JSON.readTree(r.out());
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "CNI " + type + " returned no JSON result: "
                    + r.firstLine(), e);
        }
    }
}
