package dev.kiln.isolation.oci;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class SeccompProfileTest {

    /**
     * Rules in which kiln's effective profile intentionally differs from Docker's, each with its reason, as
     * {@link #normalize} renders them. Empty: with the default capabilities kiln allows exactly what Docker allows.
     */
    private static final Map<String, String> KILN_ONLY = Map.of();
    private static final Map<String, String> DOCKER_ONLY = Map.of();

    private static final Path DOCKER_PROFILE =
            Path.of(System.getProperty("user.dir")).resolve("../shared/specs/docker-default-seccomp.json");
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void equivalentToDockersDefaultProfileOnX86WithDefaultCapabilities() throws Exception {
        assertEquivalent("x86_64", "amd64", Set.copyOf(RuntimeSpec.DEFAULT_CAPABILITIES));
    }

    static Stream<Arguments> otherCases() {
        List<String> defaults = RuntimeSpec.DEFAULT_CAPABILITIES;
        return Stream.of(
                Arguments.of("aarch64", "arm64", defaults),
                Arguments.of("x86_64", "amd64", plus(defaults, "CAP_SYS_ADMIN")),
                Arguments.of("x86_64", "amd64", plus(defaults, "CAP_SYS_PTRACE", "CAP_SYS_TIME", "CAP_SYS_NICE")),
                Arguments.of("x86_64", "amd64", plus(defaults, "CAP_DAC_READ_SEARCH", "CAP_BPF", "CAP_PERFMON")),
                Arguments.of("x86_64", "amd64", List.of()),
                Arguments.of("aarch64", "arm64", plus(defaults, "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYSLOG")));
    }

    /** Not required for the default sandbox, but --cap-add will need it: Docker's gating by caps and arch holds too. */
    @ParameterizedTest
    @MethodSource("otherCases")
    void equivalentToDockersForOtherArchitecturesAndCapabilities(String arch, String goArch, List<String> caps)
            throws Exception {
        assertEquivalent(arch, goArch, Set.copyOf(caps));
    }

    @Test
    void defaultsDenyWithEpermAndCoverNativeAndCompatArchitectures() {
        JsonNode oci = SeccompProfile.kilnDefault().toOci("x86_64", RuntimeSpec.DEFAULT_CAPABILITIES);
        assertThat(oci.get("defaultAction").asText()).isEqualTo("SCMP_ACT_ERRNO");
        assertThat(oci.get("defaultErrnoRet").asInt()).isEqualTo(1);
        assertThat(texts(oci.get("architectures"))).containsExactly("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32");
        assertThat(texts(SeccompProfile.kilnDefault().toOci("aarch64", List.of()).get("architectures")))
                .containsExactly("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM");
    }

    @Test
    void cloneWithoutNamespaceFlagsAndClone3FallsBackWithEnosys() {
        Set<String> rules = normalize(SeccompProfile.kilnDefault().toOci("x86_64", RuntimeSpec.DEFAULT_CAPABILITIES));
        assertThat(rules).contains("clone SCMP_ACT_ALLOW [0 SCMP_CMP_MASKED_EQ 2114060288 0]",
                "clone3 SCMP_ACT_ERRNO(38)");
        assertThat(rules).doesNotContain("clone SCMP_ACT_ALLOW", "unshare SCMP_ACT_ALLOW", "mount SCMP_ACT_ALLOW");
        assertThat(rules).contains("chroot SCMP_ACT_ALLOW"); // CAP_SYS_CHROOT is a default capability
    }

    @Test
    void socketRulesLeaveOutAlgAndVsock() {
        Set<String> rules = normalize(SeccompProfile.kilnDefault().toOci("x86_64", RuntimeSpec.DEFAULT_CAPABILITIES));
        assertThat(rules.stream().filter(r -> r.startsWith("socket ")).toList()).containsExactlyInAnyOrder(
                "socket SCMP_ACT_ALLOW [0 SCMP_CMP_LT 38 0]", "socket SCMP_ACT_ALLOW [0 SCMP_CMP_EQ 39 0]",
                "socket SCMP_ACT_ALLOW [0 SCMP_CMP_GT 40 0]");
    }

    @Test
    void rejectsUnknownFieldsAndMissingReasons() {
        assertThatThrownBy(() -> parse("""
                {"defaultErrno":"EPERM","architectures":{"x86_64":["SCMP_ARCH_X86_64"]},
                 "allow":[{"why":"x","syscalls":["read"],"comment":"typo'd field"}]}"""))
                .isInstanceOf(UnrecognizedPropertyException.class);
        assertThatThrownBy(() -> parse("""
                {"defaultErrno":"EPERM","architectures":{"x86_64":["SCMP_ARCH_X86_64"]},
                 "allow":[{"syscalls":["read"]}]}"""))
                .hasMessageContaining("needs a 'why'");
        assertThatThrownBy(() -> parse("""
                {"defaultErrno":"EPERM","architectures":{"x86_64":["SCMP_ARCH_X86_64"]},
                 "allow":[{"why":"x","syscalls":["read"]}],
                 "conditional":[{"syscall":"socket","why":"x","errno":"EPERM","allowArg0In":{"a":1}}]}"""))
                .hasMessageContaining("exactly one of");
    }

    @Test
    void unknownArchitectureIsAnError() {
        assertThatThrownBy(() -> SeccompProfile.kilnDefault().toOci("riscv64", List.of()))
                .hasMessageContaining("no rules for architecture riscv64");
    }

    // ---- the comparison ----

    private static void assertEquivalent(String arch, String goArch, Set<String> caps) throws Exception {
        Assumptions.assumeTrue(Files.isRegularFile(DOCKER_PROFILE), "Docker's default seccomp profile is not at "
                + DOCKER_PROFILE.normalize() + " (only the shared workspace has ../shared/specs; a clone does not)");
        JsonNode docker = JSON.readTree(DOCKER_PROFILE.toFile());
        JsonNode kiln = SeccompProfile.kilnDefault().toOci(arch, caps);

        assertThat(kiln.get("defaultAction")).isEqualTo(docker.get("defaultAction"));
        assertThat(kiln.get("defaultErrnoRet").asInt()).isEqualTo(docker.get("defaultErrnoRet").asInt());
        assertThat(texts(kiln.get("architectures"))).isEqualTo(dockerArchitectures(docker, arch));

        Set<String> kilnRules = normalize(kiln);
        Set<String> dockerRules = dockerEffective(docker, goArch, caps);
        Set<String> kilnOnly = new TreeSet<>(kilnRules);
        kilnOnly.removeAll(dockerRules);
        Set<String> dockerOnly = new TreeSet<>(dockerRules);
        dockerOnly.removeAll(kilnRules);
        assertThat(kilnOnly).as("allowed by kiln, not by Docker (%s, %s)", arch, caps)
                .isEqualTo(KILN_ONLY.keySet());
        assertThat(dockerOnly).as("allowed by Docker, not by kiln (%s, %s)", arch, caps)
                .isEqualTo(DOCKER_ONLY.keySet());
    }

    private static List<String> dockerArchitectures(JsonNode docker, String arch) {
        String scmp = "SCMP_ARCH_" + arch.toUpperCase();
        for (JsonNode entry : docker.get("archMap")) {
            if (entry.get("architecture").asText().equals(scmp)) {
                List<String> out = new ArrayList<>(List.of(scmp));
                out.addAll(texts(entry.get("subArchitectures")));
                return out;
            }
        }
        throw new AssertionError("Docker's archMap has no " + scmp);
    }

    /** Docker's own filtering (moby profiles/seccomp setupSeccomp), minKernel ignored, for GOARCH and caps. */
    private static Set<String> dockerEffective(JsonNode docker, String goArch, Set<String> caps) {
        Set<String> out = new HashSet<>();
        for (JsonNode rule : docker.get("syscalls")) {
            JsonNode includes = rule.path("includes");
            JsonNode excludes = rule.path("excludes");
            if (texts(excludes.get("arches")).contains(goArch)
                    || texts(excludes.get("caps")).stream().anyMatch(caps::contains)) {
                continue;
            }
            List<String> needArches = texts(includes.get("arches"));
            if (!needArches.isEmpty() && !needArches.contains(goArch)) {
                continue;
            }
            if (!caps.containsAll(texts(includes.get("caps")))) {
                continue;
            }
            out.addAll(render(rule));
        }
        return out;
    }

    /** One line per (syscall, action, errno, argument checks) an OCI seccomp object allows or answers. */
    static Set<String> normalize(JsonNode oci) {
        Set<String> out = new HashSet<>();
        for (JsonNode rule : oci.get("syscalls")) {
            out.addAll(render(rule));
        }
        return out;
    }

    private static List<String> render(JsonNode rule) {
        String action = rule.get("action").asText();
        if (rule.hasNonNull("errnoRet")) {
            action += "(" + rule.get("errnoRet").asInt() + ")";
        }
        List<String> args = new ArrayList<>();
        for (JsonNode arg : rule.path("args")) {
            args.add("[" + arg.get("index").asInt() + " " + arg.get("op").asText() + " " + arg.get("value").asLong()
                    + " " + arg.path("valueTwo").asLong(0) + "]");
        }
        args.sort(null);
        String suffix = args.isEmpty() ? "" : " " + String.join("", args);
        List<String> out = new ArrayList<>();
        for (String name : texts(rule.get("names"))) {
            out.add(name + " " + action + suffix);
        }
        return out;
    }

    private static List<String> texts(JsonNode array) {
        List<String> out = new ArrayList<>();
        if (array != null && array.isArray()) {
            array.forEach(n -> out.add(n.asText()));
        }
        return out;
    }

    private static List<String> plus(Collection<String> base, String... more) {
        List<String> out = new ArrayList<>(base);
        out.addAll(List.of(more));
        return out;
    }

    private static SeccompProfile parse(String json) throws Exception {
        return SeccompProfile.parse(new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)));
    }
}
