package dev.kiln.api.docker;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import dev.kiln.engine.SandboxConfig;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Docker's {@code POST /containers/create} body (Config with HostConfig inside) → the engine's {@link SandboxConfig}.
 * What kiln cannot honour is refused with a 400 naming it — never dropped silently.
 */
final class CreateTranslator {
    private CreateTranslator() {
    }

    static SandboxConfig translate(JsonNode body, String name, String platform) {
        if (body == null || !body.isObject()) {
            throw KilnException.invalid("the request body must be a JSON object (Docker's container Config)");
        }
        String image = text(body, "Image");
        if (image == null) {
            throw KilnException.invalid("Config.Image is required");
        }
        JsonNode host = body.path("HostConfig");
        refuseUnsupported(body, host);
        List<String> entrypoint = strings(body.get("Entrypoint"));
        if (entrypoint != null && entrypoint.size() == 1 && entrypoint.getFirst().isEmpty()) {
            entrypoint = List.of(); // --entrypoint "": none
        }
        String isolation = text(host, "Isolation");
        if (isolation != null) {
            isolation = switch (isolation) {
                case "default" -> null;
                case "container", "gvisor", "vm" -> isolation;
                default -> throw KilnException.invalid("kiln does not support isolation \"" + isolation
                        + "\" (use container, gvisor or vm)");
            };
        }
        long pids = host.path("PidsLimit").asLong(0);
        return new SandboxConfig(image, name == null || name.isEmpty() ? null : name,
                strings(body.get("Cmd")), entrypoint, strings(body.get("Env")), text(body, "WorkingDir"),
                text(body, "User"), text(body, "Hostname"), isolation, text(host, "Runtime"),
                host.path("NanoCpus").asLong(0), host.path("Memory").asLong(0), pids < 0 ? 0 : pids,
                host.path("ReadonlyRootfs").asBoolean(false), labels(body.get("Labels")),
                body.path("Tty").asBoolean(false), body.path("OpenStdin").asBoolean(false),
                host.path("AutoRemove").asBoolean(false), platform == null || platform.isEmpty() ? null : platform,
                publish(body, host), network(host), host.path("PublishAllPorts").asBoolean(false),
                strings(host.get("Dns")), strings(host.get("DnsSearch")), strings(host.get("DnsOptions")),
                strings(host.get("ExtraHosts")), null, 0);
    }

    /**
     * HostConfig.PortBindings ({@code {"8080/tcp":[{"HostIp":"","HostPort":"0"}]}}) as kiln's {@code -p} specs. With
     * PublishAllPorts, Config.ExposedPorts that have no binding are published on a free port too (kiln's own
     * {@code publishAll} covers the image's EXPOSE, which Docker's -P also publishes). Without it, ExposedPorts alone
     * publish nothing, as in Docker.
     */
    static List<String> publish(JsonNode config, JsonNode host) {
        List<String> specs = new ArrayList<>();
        JsonNode bindings = host.path("PortBindings");
        List<String> bound = new ArrayList<>();
        bindings.fields().forEachRemaining(e -> {
            String port = containerPort(e.getKey());
            bound.add(port);
            JsonNode list = e.getValue();
            if (list == null || list.isNull() || list.isEmpty()) {
                specs.add(port); // a binding with no host side: any free port, as Docker does
                return;
            }
            for (JsonNode b : list) {
                String ip = text(b, "HostIp");
                String hostPort = text(b, "HostPort");
                if (hostPort != null && !hostPort.chars().allMatch(Character::isDigit)) {
                    throw KilnException.invalid("kiln does not support host port \"" + hostPort + "\" for " + port
                            + " (ranges are not supported yet: give one port, or none for a free one)");
                }
                if (ip != null && ip.contains(":")) {
                    throw KilnException.invalid("kiln does not support IPv6 host address " + ip + " for " + port
                            + " yet");
                }
                specs.add((ip == null ? "" : ip) + ":" + (hostPort == null || hostPort.equals("0") ? "" : hostPort)
                        + ":" + port);
            }
        });
        if (host.path("PublishAllPorts").asBoolean(false)) {
            config.path("ExposedPorts").fieldNames().forEachRemaining(key -> {
                String port = containerPort(key);
                if (!bound.contains(port)) {
                    specs.add(port);
                }
            });
        }
        return specs.isEmpty() ? null : specs;
    }

    /** Docker's {@code PORT[/PROTO]} key, checked: kiln publishes tcp and udp. */
    private static String containerPort(String key) {
        String port = key.contains("/") ? key : key + "/tcp";
        if (!port.matches("\\d{1,5}/(tcp|udp)")) {
            throw KilnException.invalid("kiln does not support publishing \"" + key + "\" (PORT/tcp or PORT/udp)");
        }
        return port;
    }

    /**
     * HostConfig.NetworkMode as kiln's {@code network}: Docker's {@code default} and {@code bridge} are kiln's default
     * (the kiln bridge where the isolation can join one), {@code none}, {@code host} and network names pass through;
     * {@code container:NAME} is refused by kiln.
     */
    static String network(JsonNode host) {
        String mode = text(host, "NetworkMode");
        return mode == null || mode.equals("default") || mode.equals("bridge") ? null : mode;
    }

    /** HostConfig and Config fields kiln's Docker face does not implement yet, when they ask for something. */
    private static void refuseUnsupported(JsonNode config, JsonNode host) {
        List<String> refused = new ArrayList<>();
        if (nonEmpty(host.get("Binds")) || nonEmpty(host.get("Mounts")) || nonEmpty(config.get("Volumes"))
                || nonEmpty(host.get("VolumesFrom")) || nonEmpty(host.get("Tmpfs"))) {
            refused.add("volumes and bind mounts (-v, --mount, --tmpfs)");
        }
        // a sandbox joins one network: EndpointsConfig may only name the one NetworkMode names (the CLI sends it
        // for --network NAME), and per-endpoint settings (--ip, --alias) are not kiln's yet
        String network = text(host, "NetworkMode");
        String mode = network == null || network.equals("default") ? "bridge" : network;
        JsonNode endpoints = config.path("NetworkingConfig").path("EndpointsConfig");
        endpoints.fields().forEachRemaining(e -> {
            String n = e.getKey().equals("default") ? "bridge" : e.getKey();
            if (!n.equals(mode)) {
                refused.add("connecting to a second network (\"" + e.getKey() + "\")");
            } else if (nonEmpty(e.getValue().get("IPAMConfig")) || nonEmpty(e.getValue().get("Aliases"))
                    || nonEmpty(e.getValue().get("Links"))) {
                refused.add("--ip, --network-alias and --link on a network");
            }
        });
        if (host.path("Privileged").asBoolean(false)) {
            refused.add("--privileged");
        }
        if (nonEmpty(host.get("CapAdd")) || nonEmpty(host.get("CapDrop"))) {
            refused.add("--cap-add/--cap-drop");
        }
        if (nonEmpty(host.get("Devices"))) {
            refused.add("--device");
        }
        if (nonEmpty(host.get("Links"))) {
            refused.add("--link");
        }
        String restart = text(host.path("RestartPolicy"), "Name");
        if (restart != null && !restart.equals("no")) {
            refused.add("restart policies (--restart " + restart + ")");
        }
        if (host.path("Init").asBoolean(false)) {
            refused.add("--init");
        }
        String pid = text(host, "PidMode");
        String ipc = text(host, "IpcMode");
        if (pid != null || (ipc != null && !List.of("private", "none", "shareable").contains(ipc))) {
            refused.add("--pid/--ipc namespace sharing");
        }
        if (text(host, "UsernsMode") != null || text(host, "UTSMode") != null) {
            refused.add("--userns/--uts");
        }
        if (host.path("MemorySwap").asLong(0) > 0 || host.path("CpuShares").asLong(0) > 0
                || host.path("CpuQuota").asLong(0) > 0 || text(host, "CpusetCpus") != null) {
            refused.add("--memory-swap, --cpu-shares, --cpu-quota and --cpuset-cpus (use --memory and --cpus)");
        }
        if (nonEmpty(host.get("SecurityOpt"))) {
            refused.add("--security-opt");
        }
        String logType = text(host.path("LogConfig"), "Type");
        if (logType != null && !logType.equals("json-file")) {
            refused.add("log driver \"" + logType + "\"");
        }
        if (!refused.isEmpty()) {
            throw KilnException.invalid("kiln does not support " + String.join(", ", refused) + " yet");
        }
    }

    private static boolean nonEmpty(JsonNode n) {
        return n != null && !n.isNull() && ((n.isContainerNode() && !n.isEmpty()) || (n.isTextual()
                && !n.asText().isEmpty()));
    }

    static String text(JsonNode node, String field) {
        JsonNode n = node.get(field);
        return n == null || n.isNull() || n.asText().isEmpty() ? null : n.asText();
    }

    /** Docker sends a string list, or (older clients) one string for Cmd/Entrypoint; null when absent. */
    static List<String> strings(JsonNode n) {
        if (n == null || n.isNull()) {
            return null;
        }
        List<String> out = new ArrayList<>();
        if (n.isArray()) {
            n.forEach(e -> out.add(e.asText()));
        } else {
            out.add(n.asText());
        }
        return out;
    }

    private static Map<String, String> labels(JsonNode n) {
        if (n == null || !n.isObject() || n.isEmpty()) {
            return null;
        }
        Map<String, String> out = new LinkedHashMap<>();
        n.fields().forEachRemaining(e -> out.put(e.getKey(), e.getValue().asText()));
        return out;
    }
}
