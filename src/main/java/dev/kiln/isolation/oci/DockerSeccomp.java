package dev.kiln.isolation.oci;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;

import java.io.IOException;
import java.util.Collection;
import java.util.Set;

/**
 * A seccomp profile in Docker's JSON format ({@code --security-opt seccomp=PROFILE.json}; moby's
 * profiles/seccomp/default.json is one) turned into the OCI {@code linux.seccomp} object the way moby's
 * {@code setupSeccomp} does: the native architecture and its sub-architectures from {@code archMap} (or the
 * profile's {@code architectures}), and each syscall rule kept only when its {@code includes} hold for this sandbox
 * (every listed capability granted, the native architecture listed, the kernel at least {@code minKernel}) and its
 * {@code excludes} do not.
 */
final class DockerSeccomp {
    private DockerSeccomp() {
    }

    static ObjectNode toOci(String profile, String arch, Collection<String> capabilities) {
        JsonNode doc;
        try {
            doc = new ObjectMapper().readTree(profile);
        } catch (IOException e) {
            throw KilnException.invalid("--security-opt seccomp: the profile is not JSON (" + e.getMessage()
                    .lines().findFirst().orElse("") + ")");
        }
        if (doc == null || !doc.isObject() || !doc.path("defaultAction").isTextual()) {
            throw KilnException.invalid("--security-opt seccomp: the profile needs a defaultAction (Docker's format)");
        }
        String scmpArch = switch (arch) {
            case "x86_64" -> "SCMP_ARCH_X86_64";
            case "aarch64" -> "SCMP_ARCH_AARCH64";
            default -> "SCMP_ARCH_" + arch.toUpperCase(java.util.Locale.ROOT);
        };
        String goArch = switch (arch) {
            case "x86_64" -> "amd64";
            case "aarch64" -> "arm64";
            default -> arch;
        };
        Set<String> caps = Set.copyOf(capabilities);
        ObjectNode oci = JsonNodeFactory.instance.objectNode();
        oci.put("defaultAction", doc.get("defaultAction").asText());
        if (doc.has("defaultErrnoRet")) {
            oci.put("defaultErrnoRet", doc.get("defaultErrnoRet").asInt());
        }
        ArrayNode arches = oci.putArray("architectures");
        if (doc.has("archMap")) {
            for (JsonNode a : doc.get("archMap")) {
                if (a.path("architecture").asText().equals(scmpArch)) {
                    arches.add(scmpArch);
                    a.path("subArchitectures").forEach(sub -> arches.add(sub.asText()));
                }
            }
        } else {
            doc.path("architectures").forEach(a -> arches.add(a.asText()));
        }
        ArrayNode rules = oci.putArray("syscalls");
        for (JsonNode call : doc.path("syscalls")) {
            if (!applies(call.path("includes"), call.path("excludes"), goArch, caps)) {
                continue;
            }
            ObjectNode rule = rules.addObject();
            ArrayNode names = rule.putArray("names");
            if (call.has("name")) {
                names.add(call.get("name").asText());
            }
            call.path("names").forEach(n -> names.add(n.asText()));
            if (!call.path("action").isTextual()) {
                throw KilnException.invalid("--security-opt seccomp: a syscall rule has no action (" + names + ")");
            }
            rule.put("action", call.get("action").asText());
            if (call.has("errnoRet")) {
                rule.put("errnoRet", call.get("errnoRet").asInt());
            }
            if (call.has("args") && call.get("args").isArray() && !call.get("args").isEmpty()) {
                ArrayNode args = rule.putArray("args");
                for (JsonNode a : call.get("args")) {
                    ObjectNode arg = args.addObject();
                    arg.put("index", a.path("index").asInt());
                    arg.put("value", a.path("value").asLong());
                    if (a.has("valueTwo")) {
                        arg.put("valueTwo", a.path("valueTwo").asLong());
                    }
                    arg.put("op", a.path("op").asText());
                }
            }
        }
        return oci;
    }

    private static boolean applies(JsonNode includes, JsonNode excludes, String goArch, Set<String> caps) {
        for (JsonNode c : includes.path("caps")) {
            if (!caps.contains(c.asText())) {
                return false;
            }
        }
        if (includes.has("arches") && !contains(includes.get("arches"), goArch)) {
            return false;
        }
        if (includes.has("minKernel") && !kernelAtLeast(includes.get("minKernel").asText())) {
            return false;
        }
        for (JsonNode c : excludes.path("caps")) {
            if (caps.contains(c.asText())) {
                return false;
            }
        }
        return !excludes.has("arches") || !contains(excludes.get("arches"), goArch);
    }

    private static boolean contains(JsonNode array, String value) {
        for (JsonNode n : array) {
            if (n.asText().equals(value)) {
                return true;
            }
        }
        return false;
    }

    /** The running kernel is at least {@code version} ({@code 4.8}), compared as major.minor. */
    static boolean kernelAtLeast(String version) {
        int[] want = majorMinor(version);
        int[] have = majorMinor(System.getProperty("os.version"));
        return have[0] > want[0] || (have[0] == want[0] && have[1] >= want[1]);
    }

    private static int[] majorMinor(String version) {
        String[] parts = version.split("[.-]");
        try {
            return new int[]{Integer.parseInt(parts[0]), parts.length > 1 ? Integer.parseInt(parts[1]) : 0};
        } catch (NumberFormatException e) {
            throw KilnException.invalid("--security-opt seccomp: bad minKernel \"" + version + "\"");
        }
    }
}
