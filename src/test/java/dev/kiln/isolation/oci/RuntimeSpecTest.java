package dev.kiln.isolation.oci;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.isolation.Mount;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.Resources;
import dev.kiln.isolation.SandboxSpec;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The config.json document, field by field, against Docker's defaults for a non-privileged container. */
class RuntimeSpecTest {

    private static final Host V1_HOST = new Host("x86_64", 20_000, false);
    private static final Path DIR = Path.of("/run/kiln/sandboxes/0123456789abcdef");

    @Test
    void processMirrorsDocker() {
        JsonNode process = build(spec(false, Resources.UNLIMITED, List.of()), OciRuntime.RUNC, V1_HOST).get("process");
        assertThat(process.get("terminal").asBoolean()).isFalse();
        assertThat(process.get("user").toString()).isEqualTo("{\"uid\":1000,\"gid\":1000,\"additionalGids\":[1000,2000]}");
        assertThat(texts(process.get("args"))).containsExactly("sh", "-c", "true");
        assertThat(process.get("cwd").asText()).isEqualTo("/srv");
        assertThat(process.get("noNewPrivileges").asBoolean()).isFalse();
        JsonNode caps = process.get("capabilities");
        assertThat(names(caps)).containsExactly("bounding", "effective", "permitted");
        for (JsonNode set : caps) {
            assertThat(texts(set)).containsExactlyInAnyOrder("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID",
                    "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP",
                    "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE");
        }
    }

    @Test
    void nofileIsCappedByTheCallersHardLimit() {
        JsonNode low = build(spec(false, Resources.UNLIMITED, List.of()), OciRuntime.RUNC, V1_HOST);
        assertThat(low.at("/process/rlimits").toString())
                .isEqualTo("[{\"type\":\"RLIMIT_NOFILE\",\"hard\":20000,\"soft\":20000}]");
        JsonNode high = build(spec(false, Resources.UNLIMITED, List.of()), OciRuntime.RUNC,
                new Host("x86_64", Long.MAX_VALUE, false));
        assertThat(high.at("/process/rlimits/0/hard").asLong()).isEqualTo(1_048_576);
    }

    @Test
    void hostLimitsParseProcLimits() {
        assertThat(Host.nofileHardLimit(Path.of("/proc/self/limits"))).isPositive();
        assertThat(Host.nativeArch("amd64")).isEqualTo("x86_64");
        assertThat(Host.nativeArch("aarch64")).isEqualTo("aarch64");
    }

    @Test
    void rootHostnameAndVersion() {
        JsonNode config = build(spec(true, Resources.UNLIMITED, List.of()), OciRuntime.RUNC, V1_HOST);
        assertThat(config.get("ociVersion").asText()).isEqualTo("1.0.2");
        assertThat(config.get("root").toString()).isEqualTo("{\"path\":\"rootfs\",\"readonly\":true}");
        assertThat(config.get("hostname").asText()).isEqualTo("0123456789ab"); // no hostname: the id's first 12
    }

    @Test
    void defaultMountsThenEtcFiles() {
        JsonNode mounts = build(spec(false, Resources.UNLIMITED, List.of()), OciRuntime.RUNC, V1_HOST).get("mounts");
        assertThat(destinations(mounts)).containsExactly("/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup",
                "/dev/mqueue", "/dev/shm", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf");
        assertThat(mounts.get(1).toString()).isEqualTo("{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":"
                + "\"tmpfs\",\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]}");
        assertThat(texts(mounts.get(2).get("options"))).containsExactly("nosuid", "noexec", "newinstance",
                "ptmxmode=0666", "mode=0620", "gid=5");
        assertThat(texts(mounts.get(3).get("options"))).contains("ro");
        assertThat(texts(mounts.get(4).get("options"))).contains("ro");
        assertThat(texts(mounts.get(6).get("options"))).contains("size=65536k");
        JsonNode hosts = mounts.get(8);
        assertThat(hosts.get("source").asText()).isEqualTo(DIR.resolve("hosts").toString());
        assertThat(texts(hosts.get("options"))).containsExactly("rbind", "rprivate");
    }

    @Test
    void readOnlyRootMakesEtcFilesReadOnly() {
        JsonNode mounts = build(spec(true, Resources.UNLIMITED, List.of()), OciRuntime.RUNC, V1_HOST).get("mounts");
        assertThat(texts(mounts.get(9).get("options"))).containsExactly("rbind", "rprivate", "ro");
    }

    @Test
    void callerMountsReplaceDefaultsAndAreSortedParentFirst() {
        List<Mount> extra = List.of(
                new Mount("bind", "/host/hosts", "/etc/hosts", List.of("rbind")),
                new Mount("tmpfs", "tmpfs", "/dev/shm", List.of("size=1g")),
                new Mount("bind", "/host/etc", "/etc", List.of("rbind")));
        JsonNode mounts = build(spec(false, Resources.UNLIMITED, extra), OciRuntime.RUNC, V1_HOST).get("mounts");
        assertThat(destinations(mounts)).containsExactly("/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup",
                "/dev/mqueue", "/etc", "/etc/hosts", "/dev/shm", "/etc/hostname", "/etc/resolv.conf");
        assertThat(mounts.get(7).get("source").asText()).isEqualTo("/host/hosts");
    }

    @Test
    void namespacesCgroupsAndPaths() {
        JsonNode linux = build(spec(false, Resources.UNLIMITED, List.of()), OciRuntime.RUNC, V1_HOST).get("linux");
        List<String> types = new ArrayList<>();
        linux.get("namespaces").forEach(n -> types.add(n.get("type").asText()));
        assertThat(types).containsExactly("pid", "ipc", "uts", "mount", "network");
        assertThat(linux.get("cgroupsPath").asText()).isEqualTo("kiln/0123456789abcdef/runtime");
        assertThat(texts(linux.get("maskedPaths"))).containsExactly("/proc/asound", "/proc/acpi", "/proc/kcore",
                "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap");
        assertThat(texts(linux.get("readonlyPaths"))).containsExactly("/proc/bus", "/proc/fs", "/proc/irq",
                "/proc/sys", "/proc/sysrq-trigger");
        assertThat(linux.at("/seccomp/defaultAction").asText()).isEqualTo("SCMP_ACT_ERRNO");

        JsonNode v2 = build(spec(false, Resources.UNLIMITED, List.of()), OciRuntime.RUNC,
                new Host("x86_64", 20_000, true)).get("linux");
        assertThat(v2.get("namespaces").toString()).contains("{\"type\":\"cgroup\"}");
    }

    @Test
    void resourcesFromDockerFlags() {
        JsonNode resources = build(spec(false, new Resources(1_500_000_000L, 256L << 20, 100), List.of()),
                OciRuntime.RUNC, V1_HOST).at("/linux/resources");
        assertThat(resources.get("memory").toString()).isEqualTo("{\"limit\":268435456}");
        assertThat(resources.get("cpu").toString()).isEqualTo("{\"quota\":150000,\"period\":100000}");
        assertThat(resources.get("pids").toString()).isEqualTo("{\"limit\":100}");
        JsonNode devices = resources.get("devices");
        assertThat(devices.get(0).toString()).isEqualTo("{\"allow\":false,\"access\":\"rwm\"}");
        List<String> allowed = new ArrayList<>();
        devices.forEach(d -> allowed.add(d.path("type").asText() + " " + d.path("major").asText("*") + ":"
                + d.path("minor").asText("*") + " " + d.get("access").asText()));
        assertThat(allowed.subList(1, allowed.size())).containsExactly("c *:* m", "b *:* m", "c 1:3 rwm",
                "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm",
                "c 10:200 rwm");

        JsonNode none = build(spec(false, Resources.UNLIMITED, List.of()), OciRuntime.RUNC, V1_HOST)
                .at("/linux/resources");
        assertThat(names(none)).containsExactly("devices");
    }

    @Test
    void gvisorScalesThePidsLimitForTheSandboxsOwnTasks() {
        JsonNode runsc = build(spec(false, new Resources(0, 0, 50), List.of()), OciRuntime.RUNSC, V1_HOST);
        assertThat(runsc.at("/linux/resources/pids/limit").asLong()).isEqualTo(64 + 16 * 50);
    }

    @Test
    void tooFewCpusIsAnError() {
        assertThatThrownBy(() -> build(spec(false, new Resources(9_000_000L, 0, 0), List.of()), OciRuntime.RUNC,
                V1_HOST)).hasMessageContaining("--cpus must be at least 0.01");
    }

    private static JsonNode build(SandboxSpec spec, OciRuntime runtime, Host host) {
        return RuntimeSpec.build(spec, "rootfs", runtime, host, SeccompProfile.kilnDefault());
    }

    private static SandboxSpec spec(boolean readOnly, Resources resources, List<Mount> extra) {
        ProcessSpec process = new ProcessSpec(List.of("sh", "-c", "true"), List.of("PATH=/bin"), "/srv", 1000, 1000,
                List.of(1000, 2000), false, false);
        return new SandboxSpec("0123456789abcdef", "name", null, process, DIR.resolve("image"), readOnly, resources,
                Map.of("label", "x"), extra, DIR);
    }

    private static List<String> destinations(JsonNode mounts) {
        List<String> out = new ArrayList<>();
        mounts.forEach(m -> out.add(m.get("destination").asText()));
        return out;
    }

    private static List<String> names(JsonNode object) {
        List<String> out = new ArrayList<>();
        object.fieldNames().forEachRemaining(out::add);
        return out;
    }

    private static List<String> texts(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }
}
