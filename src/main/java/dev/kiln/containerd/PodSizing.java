package dev.kiln.containerd;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The pod's size as containerd's CRI hands it to sandboxed runtimes: annotations on the pod sandbox's spec
 * ({@code io.kubernetes.cri.sandbox-cpu-period}, {@code -cpu-quota}, {@code -cpu-shares}, {@code sandbox-memory}: the
 * sum of the pod's containers' resources, from the kubelet's PodSandboxConfig). Applied where the isolation has one
 * place for the whole pod: under gvisor every container of the pod runs in the sandbox's Sentry, so the pause task's
 * cgroup (its spec's {@code linux.resources}, which runsc applies to the sandbox, and from whose memory limit runsc
 * sizes the Sentry's memory) gets the pod's limits in place of the pause container's own (containerd gives it
 * {@code cpu.shares} 2 and no limit: right for a pause process, not for the pod's Sentry). Under {@code container} nothing is
 * needed: each container's spec carries its own resources, and the pod's cgroup is the kubelet's cgroup parent.
 */
final class PodSizing {
    private PodSizing() {
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String PREFIX = "io.kubernetes.cri.sandbox-";

    /** Writes the pod's limits into the gVisor pod sandbox's config.json; true if it changed anything. */
    static boolean apply(KilnRuntime runtime, JsonNode spec, Path bundle) throws IOException {
        JsonNode a = spec.path("annotations");
        if (!runtime.isolation().equals("gvisor")
                || !a.path("io.kubernetes.cri.container-type").asText("").equals("sandbox")) {
            return false;
        }
        ObjectNode resources = ((ObjectNode) spec).withObject("/linux").withObject("/resources");
        boolean changed = set(resources.withObject("/cpu"), "period", a.path(PREFIX + "cpu-period"));
        changed |= set(resources.withObject("/cpu"), "quota", a.path(PREFIX + "cpu-quota"));
        changed |= set(resources.withObject("/cpu"), "shares", a.path(PREFIX + "cpu-shares"));
        changed |= set(resources.withObject("/memory"), "limit", a.path(PREFIX + "memory"));
        if (changed) JSON.writeValue(bundle.resolve("config.json").toFile(), spec);
        return changed;
    }

    /** Sets {@code field} from an annotation holding a positive number. */
    private static boolean set(ObjectNode node, String field, JsonNode annotation) {
        long value;
        try {
            value = Long.parseLong(annotation.asText("").strip());
        } catch (NumberFormatException none) {
            return false;
        }
        if (value <= 0 || node.path(field).asLong(0) == value) return false;
        node.put(field, value);
        return true;
    }
}
