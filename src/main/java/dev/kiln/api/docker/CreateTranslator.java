package dev.kiln.api.docker;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import dev.kiln.api.v1.CreateRequest;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Docker's {@code POST /containers/create} body (Config with HostConfig inside) → kiln's {@link CreateRequest}.
 * What kiln cannot honour is refused with a 400 naming it — never dropped silently.
 */
final class CreateTranslator {
    private CreateTranslator() {
    }

    static CreateRequest translate(JsonNode body, String name, String platform) {
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
        return new CreateRequest(image, name == null || name.isEmpty() ? null : name,
                strings(body.get("Cmd")), entrypoint, strings(body.get("Env")), text(body, "WorkingDir"),
                text(body, "User"), text(body, "Hostname"), isolation, text(host, "Runtime"),
                host.path("NanoCpus").asLong(0), host.path("Memory").asLong(0), pids < 0 ? 0 : pids,
                host.path("ReadonlyRootfs").asBoolean(false), labels(body.get("Labels")),
                body.path("Tty").asBoolean(false), body.path("OpenStdin").asBoolean(false),
                host.path("AutoRemove").asBoolean(false), platform == null || platform.isEmpty() ? null : platform,
                null, null, false, null, null, null, null, null, 0);
    }

    /** HostConfig and Config fields kiln's Docker face does not implement yet, when they ask for something. */
    private static void refuseUnsupported(JsonNode config, JsonNode host) {
        List<String> refused = new ArrayList<>();
        if (nonEmpty(host.get("Binds")) || nonEmpty(host.get("Mounts")) || nonEmpty(config.get("Volumes"))
                || nonEmpty(host.get("VolumesFrom")) || nonEmpty(host.get("Tmpfs"))) {
            refused.add("volumes and bind mounts (-v, --mount, --tmpfs)");
        }
        if (nonEmpty(host.get("PortBindings")) || host.path("PublishAllPorts").asBoolean(false)) {
            refused.add("publishing ports (-p, -P)");
        }
        String network = text(host, "NetworkMode");
        if (network != null && !List.of("default", "none", "bridge").contains(network)) {
            refused.add("network mode \"" + network + "\"");
        }
        JsonNode endpoints = config.path("NetworkingConfig").path("EndpointsConfig");
        endpoints.fieldNames().forEachRemaining(n -> {
            if (!List.of("default", "none", "bridge").contains(n)) {
                refused.add("network \"" + n + "\"");
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
        if (nonEmpty(host.get("Dns")) || nonEmpty(host.get("ExtraHosts"))) {
            refused.add("--dns/--add-host");
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
