package dev.kiln.audit;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.audit.SyscallSurface.Kind;
import dev.kiln.isolation.oci.RuntimeSpec;
import dev.kiln.isolation.oci.SeccompProfile;
import dev.kiln.isolation.seccomp.SyscallTable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Docker's profile (from ../shared/specs) evaluated per syscall, and kiln's own profile against it. */
class JsonProfileTest {

    /** ../shared/specs of a clone in the shared workspace, or ../../shared/specs of a worktree below it. */
    static final Path DOCKER_PROFILE = java.util.stream.Stream.of("../shared", "../../shared")
            .map(d -> Path.of(System.getProperty("user.dir")).resolve(d).resolve("specs/docker-default-seccomp.json"))
            .filter(Files::isRegularFile).findFirst()
            .orElse(Path.of(System.getProperty("user.dir")).resolve("../shared/specs/docker-default-seccomp.json"));
    static final Set<String> CAPS = Set.copyOf(RuntimeSpec.DEFAULT_CAPABILITIES);
    static final String KERNEL = System.getProperty("os.version");

    /** Docker's default profile for amd64 with Docker's default capabilities, over the table. */
    static SyscallSurface docker() throws Exception {
        Assumptions.assumeTrue(Files.isRegularFile(DOCKER_PROFILE), "Docker's default seccomp profile is not at "
                + DOCKER_PROFILE.normalize() + " (only the shared workspace has ../shared/specs; a clone does not)");
        JsonNode json = new ObjectMapper().readTree(DOCKER_PROFILE.toFile());
        return JsonProfile.of(json).evaluate(SyscallTable.x86_64(), "amd64", CAPS, KERNEL);
    }

    @Test
    void dockersProfileAllowsMostOfTheTableAndChecksThreeByArgument() throws Exception {
        SyscallSurface s = docker();
        // socket (not AF_ALG/AF_VSOCK), personality (five personas), clone (no namespace flags)
        assertThat(s.names(Kind.ARGUMENT_CHECKED)).containsExactlyInAnyOrder("socket", "personality", "clone");
        assertThat(s.names(Kind.ALLOWED)).contains("read", "openat", "execve", "ptrace", "chroot")
                .doesNotContain("mount", "unshare", "setns", "bpf", "kexec_load", "clone3", "open_by_handle_at");
        assertThat(s.verdict("clone3").outcomes())
                .containsExactly(SeccompAction.errno(38));
        assertThat(s.count(Kind.ALLOWED) + s.count(Kind.ARGUMENT_CHECKED) + s.count(Kind.DENIED)).isEqualTo(362);
    }

    @Test
    void kilnsProfileLeavesTheSameSurfaceAsDockers() throws Exception {
        SyscallSurface kiln = JsonProfile.of(SeccompProfile.kilnDefault().toOci("x86_64", CAPS))
                .evaluate(SyscallTable.x86_64(), "amd64", CAPS, KERNEL);
        assertThat(kiln).isEqualTo(docker());
    }

    @Test
    void capabilitiesAndArchitectureSelectRules() throws Exception {
        docker(); // skips without the profile
        Set<String> admin = new HashSet<>(CAPS);
        admin.add("CAP_SYS_ADMIN");
        JsonNode json = new ObjectMapper().readTree(DOCKER_PROFILE.toFile());
        SyscallSurface withAdmin = JsonProfile.of(json).evaluate(SyscallTable.x86_64(), "amd64", admin, KERNEL);
        assertThat(withAdmin.names(Kind.ALLOWED)).contains("mount", "unshare", "setns", "clone", "clone3");
        SyscallSurface oldKernel = JsonProfile.of(json).evaluate(SyscallTable.x86_64(), "amd64", CAPS, "4.4.0");
        assertThat(oldKernel.names(Kind.ALLOWED)).doesNotContain("ptrace"); // minKernel 4.8
        SyscallSurface arm = JsonProfile.of(json).evaluate(SyscallTable.x86_64(), "arm64", CAPS, KERNEL);
        assertThat(arm.names(Kind.ALLOWED)).doesNotContain("arch_prctl", "modify_ldt");
    }

    @Test
    void theAuditsDockerRowIsDockersProfile() throws Exception {
        SyscallSurface docker = docker();
        AuditReport.Row row = new Audit(null, null).references().getFirst();
        assertThat(row.isolation()).isEqualTo("docker default");
        assertThat(row.source()).isEqualTo(AuditReport.PUBLISHED);
        assertThat(row.allowed()).isEqualTo(docker.count(Kind.ALLOWED));
        assertThat(row.argumentChecked()).isEqualTo(docker.count(Kind.ARGUMENT_CHECKED));
        assertThat(row.allowedSyscalls()).isEqualTo(docker.names(Kind.ALLOWED));
    }
}
