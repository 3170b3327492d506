package dev.kiln.api.docker;

import dev.kiln.testing.Command;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The {@code docker run} flags of issue 15 through the real docker CLI, each checked from inside the sandbox as a
 * user would (capability masks in /proc/self/status, {@code ulimit}, a write on a read-only root, the size of
 * /dev/shm, ...) and shown back by inspect as Docker shows it; bad values and what an isolation cannot honour are
 * one-line refusals, never dropped.
 */
class DockerRunFlagsTest {

    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;

    /** Docker's 14 default capabilities as /proc/self/status prints them. */
    static final String DEFAULT_CAPS = "00000000a80425fb";

    @BeforeAll
    static void start() throws Exception {
        fixture.start(work, "kiln-flags-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);
    }

    @AfterAll
    static void stop() {
        fixture.close();
    }

    /** What kilnd said, without the docker CLI's own "Run 'docker run --help'" line: one line, never a trace. */
    static java.util.List<String> daemonError(DockerCli.Result r) {
        return r.err().lines().filter(l -> !l.isBlank() && !l.startsWith("Run 'docker")).toList();
    }

    private static String out(String... args) {
        return docker.ok(args).strip();
    }

    private static String status(String field, String... flags) {
        java.util.List<String> argv = new java.util.ArrayList<>(java.util.List.of("run", "--rm"));
        argv.addAll(java.util.List.of(flags));
        argv.addAll(java.util.List.of(image, "busybox", "grep", field + ":", "/proc/self/status"));
        return out(argv.toArray(String[]::new)).replace(field + ":", "").strip();
    }

    @Test
    void capAddAndCapDropChangeTheCapabilitiesTheProcessHolds() {
        assertThat(status("CapEff")).isEqualTo(DEFAULT_CAPS);
        assertThat(status("CapEff", "--cap-drop", "ALL")).isEqualTo("0000000000000000");
        // NET_ADMIN is bit 12; lower case and without CAP_, as Docker takes it
        assertThat(status("CapEff", "--cap-drop", "ALL", "--cap-add", "net_admin")).isEqualTo("0000000000001000");
        assertThat(status("CapBnd", "--cap-drop", "CHOWN")).isEqualTo("00000000a80425fa");
        assertThat(Long.parseLong(status("CapEff", "--cap-add", "ALL"), 16)).as("every capability kilnd holds")
                .isGreaterThan(Long.parseLong(DEFAULT_CAPS, 16));

        docker.ok("create", "--name", "caps", "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", image, "true");
        assertThat(out("inspect", "--format", "{{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}}", "caps"))
                .isEqualTo("[\"CAP_NET_ADMIN\"] [\"CAP_MKNOD\"]");
        docker.ok("rm", "caps");

        DockerCli.Result bad = docker.run("run", "--rm", "--cap-add", "NOT_A_CAP", image, "true");
        assertThat(bad.exitCode()).isEqualTo(125);
        assertThat(bad.err()).contains("unknown capability").contains("NOT_A_CAP");
    }

    @Test
    void anExecGetsTheSandboxsCapabilities() {
        docker.ok("run", "-d", "--name", "execcaps", "--cap-drop", "ALL", image, "sleep", "60");
        try {
            assertThat(out("exec", "execcaps", "busybox", "grep", "CapEff:", "/proc/self/status"))
                    .endsWith("0000000000000000");
        } finally {
            docker.ok("rm", "-f", "execcaps");
        }
    }

    @Test
    void readOnlyRootRefusesWrites() {
        DockerCli.Result r = docker.run("run", "--rm", "--read-only", image, "sh", "-c", "busybox touch /x");
        assertThat(r.exitCode()).isNotZero();
        assertThat(r.err()).contains("Read-only file system");
        assertThat(out("run", "--rm", image, "sh", "-c", "busybox touch /x && echo written")).isEqualTo("written");
    }

    @Test
    void noNewPrivilegesIsSetOnTheProcess() {
        assertThat(status("NoNewPrivs")).isEqualTo("0");
        assertThat(status("NoNewPrivs", "--security-opt", "no-new-privileges")).isEqualTo("1");
        docker.ok("create", "--name", "nnp", "--security-opt", "no-new-privileges:true", image, "true");
        assertThat(out("inspect", "--format", "{{json .HostConfig.SecurityOpt}}", "nnp"))
                .isEqualTo("[\"no-new-privileges\"]");
        docker.ok("rm", "nnp");
    }

    @Test
    void seccompProfilesInDockersFormatAreApplied() throws Exception {
        assertThat(status("Seccomp")).as("kiln's default profile").isEqualTo("2");
        assertThat(status("Seccomp", "--security-opt", "seccomp=unconfined")).isEqualTo("0");

        Path noMkdir = work.resolve("no-mkdir.json");
        Files.writeString(noMkdir, """
                {"defaultAction": "SCMP_ACT_ALLOW",
                 "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
                 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
                """);
        DockerCli.Result denied = docker.run("run", "--rm", "--security-opt", "seccomp=" + noMkdir, image, "sh",
                "-c", "busybox mkdir /tmp/d");
        assertThat(denied.exitCode()).isNotZero();
        assertThat(denied.err()).contains("Operation not permitted");
        assertThat(out("run", "--rm", "--security-opt", "seccomp=" + noMkdir, image, "sh", "-c",
                "busybox touch /tmp/f && echo other calls pass")).isEqualTo("other calls pass");

        // Docker's own default profile, as a user would pass it
        Path dockerDefault = Path.of("/work/shared/specs/docker-default-seccomp.json");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isRegularFile(dockerDefault), "no copy of Docker's profile");
        assertThat(out("run", "--rm", "--security-opt", "seccomp=" + dockerDefault, image, "sh", "-c",
                "busybox grep Seccomp: /proc/self/status; busybox unshare -U true 2>/dev/null || echo unshare refused"))
                .contains("2").contains("unshare refused");

        Path broken = work.resolve("broken.json");
        Files.writeString(broken, "{\"syscalls\": []}");
        DockerCli.Result bad = docker.run("run", "--rm", "--security-opt", "seccomp=" + broken, image, "true");
        assertThat(bad.exitCode()).isEqualTo(125);
        assertThat(bad.err().strip()).contains("defaultAction").doesNotContain("\n\tat ");
    }

    @Test
    void ulimitsAreTheProcesssLimits() {
        assertThat(out("run", "--rm", "--ulimit", "nofile=1024:2048", image, "sh", "-c", "ulimit -n; ulimit -Hn"))
                .isEqualTo("1024\n2048");
        assertThat(out("run", "--rm", "--ulimit", "core=0", image, "sh", "-c", "ulimit -c")).isEqualTo("0");
        docker.ok("create", "--name", "ul", "--ulimit", "nofile=1024:2048", image, "true");
        assertThat(out("inspect", "--format", "{{json .HostConfig.Ulimits}}", "ul"))
                .isEqualTo("[{\"Name\":\"nofile\",\"Hard\":2048,\"Soft\":1024}]");
        docker.ok("rm", "ul");

        DockerCli.Result above = docker.run("run", "--rm", "--ulimit", "nofile=99999999", image, "true");
        assertThat(above.exitCode()).isEqualTo(125);
        assertThat(above.err()).contains("kilnd's own hard limit");
    }

    @Test
    void shmSizeSizesDevShm() {
        assertThat(out("run", "--rm", "--shm-size", "128m", image, "sh", "-c", "busybox df -k /dev/shm | busybox tail -n 1"))
                .contains("131072");
        assertThat(out("run", "--rm", image, "sh", "-c", "busybox df -k /dev/shm | busybox tail -n 1")).contains("65536");
        docker.ok("create", "--name", "shm", "--shm-size", "128m", image, "true");
        assertThat(out("inspect", "--format", "{{.HostConfig.ShmSize}}", "shm")).isEqualTo("134217728");
        docker.ok("rm", "shm");
    }

    @Test
    void namespacedSysctlsAreSetOthersRefused() {
        assertThat(out("run", "--rm", "--sysctl", "kernel.shmmax=123456789", "--sysctl",
                "net.ipv4.ip_unprivileged_port_start=80", image, "sh", "-c",
                "cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_unprivileged_port_start"))
                .isEqualTo("123456789\n80");
        // the docker CLI refuses a host-wide one itself; kilnd refuses it too (kiln's CLI test sends one)
        DockerCli.Result host = docker.run("run", "--rm", "--sysctl", "vm.swappiness=10", image, "true");
        assertThat(host.exitCode()).isNotZero();
        assertThat(host.err()).contains("vm.swappiness").contains("not allowed");
    }

    @Test
    void groupAddAddsSupplementaryGroups() {
        assertThat(out("run", "--rm", "--group-add", "app", "--group-add", "4242", image, "id", "-G"))
                .isEqualTo("0 1000 4242");
        DockerCli.Result missing = docker.run("run", "--rm", "--group-add", "nosuchgroup", image, "true");
        assertThat(missing.exitCode()).isEqualTo(125);
        assertThat(missing.err()).contains("unable to find group nosuchgroup");
    }

    @Test
    void aDeviceIsUsableInsideUnderItsNewName() {
        assertThat(out("run", "--rm", "--device", "/dev/zero:/dev/myzero:r", image, "sh", "-c",
                "ls -l /dev/myzero | busybox cut -c1; busybox head -c 3 /dev/myzero | busybox od -An -tx1")).isEqualTo("c\n 00 00 00");
        DockerCli.Result absent = docker.run("run", "--rm", "--device", "/dev/no-such-device", image, "true");
        assertThat(absent.exitCode()).isEqualTo(125);
        assertThat(absent.err()).contains("no such device");
        // /dev/fuse's numbers: not among Docker's default device rules, so a node made of them cannot be opened
        DockerCli.Result deniedNode = docker.run("run", "--rm", image, "sh", "-c",
                "busybox mknod /tmp/f c 10 229 && exec 3</tmp/f");
        assertThat(deniedNode.exitCode()).as("a node not allowed stays closed").isNotZero();
        assertThat(deniedNode.err()).contains("Operation not permitted");
        assertThat(out("run", "--rm", "--device-cgroup-rule", "c 10:229 rw", image, "sh", "-c",
                "busybox mknod /tmp/f c 10 229 && exec 3</tmp/f && echo opened")).isEqualTo("opened");
    }

    @Test
    void initRunsAsPidOneAndTheCommandBelowIt() {
        assertThat(out("run", "--rm", image, "sh", "-c", "echo $$")).isEqualTo("1");
        String withInit = out("run", "--rm", "--init", image, "sh", "-c", "echo $$; busybox tr '\\0' ' ' < /proc/1/cmdline");
        assertThat(withInit.lines().findFirst().orElseThrow()).isNotEqualTo("1");
        assertThat(withInit).contains("/sbin/docker-init -- sh -c");
        // exit codes pass through the init
        assertThat(docker.run("run", "--rm", "--init", image, "sh", "-c", "exit 3").exitCode()).isEqualTo(3);
        docker.ok("create", "--name", "init", "--init", image, "true");
        assertThat(out("inspect", "--format", "{{.HostConfig.Init}} {{.Path}}", "init")).isEqualTo("true true");
        docker.ok("rm", "init");
    }

    @Test
    void pidAndUtsHostShareTheHostsNamespaces() throws Exception {
        assertThat(out("run", "--rm", "--pid", "host", image, "sh", "-c", "test -d /proc/" + ProcessHandle.current()
                .pid() + " && echo sees-host-pids")).isEqualTo("sees-host-pids");
        assertThat(out("run", "--rm", "--uts", "host", image, "busybox", "hostname"))
                .isEqualTo(Files.readString(Path.of("/proc/sys/kernel/hostname")).strip());
        DockerCli.Result other = docker.run("run", "--rm", "--pid", "container:x", image, "true");
        assertThat(other.exitCode()).isEqualTo(125);
    }

    @Test
    void cpuAndMemoryCgroupSettingsReachTheCgroup() {
        String id = out("run", "-d", "--cpu-shares", "512", "--cpuset-cpus", "0", "-m", "64m", "--memory-swap",
                "128m", "--memory-swappiness", "10", image, "sleep", "60");
        try {
            String inside = out("exec", id, "sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.shares "
                    + "/sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes "
                    + "/sys/fs/cgroup/memory/memory.swappiness");
            assertThat(inside).isEqualTo("512\n0\n134217728\n10");
            assertThat(out("inspect", "--format", "{{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} "
                    + "{{.HostConfig.MemorySwap}} {{.HostConfig.MemorySwappiness}}", id))
                    .isEqualTo("512 0 134217728 10");
        } finally {
            docker.ok("rm", "-f", id);
        }
    }

    @Test
    void stopTimeoutIsTheStopsDefault() {
        docker.ok("run", "-d", "--name", "slowstop", "--stop-timeout", "1", image, "sh", "-c",
                "trap '' TERM; while true; do sleep 1; done");
        try {
            assertThat(out("inspect", "--format", "{{.Config.StopTimeout}}", "slowstop")).isEqualTo("1");
            Instant t0 = Instant.now();
            docker.ok("stop", "slowstop");
            assertThat(Duration.between(t0, Instant.now())).as("SIGKILL after 1 s, not 10")
                    .isLessThan(Duration.ofSeconds(6));
        } finally {
            docker.ok("rm", "-f", "slowstop");
        }
    }

    @Test
    void logDriverNoneKeepsNoLogsAndOthersAreRefused() {
        docker.ok("run", "--name", "nolog", "--log-driver", "none", image, "echo", "secret");
        try {
            assertThat(out("inspect", "--format", "{{.HostConfig.LogConfig.Type}}", "nolog")).isEqualTo("none");
            DockerCli.Result logs = docker.run("logs", "nolog");
            assertThat(logs.all()).doesNotContain("secret");
        } finally {
            docker.ok("rm", "nolog");
        }
        DockerCli.Result syslog = docker.run("run", "--rm", "--log-driver", "syslog", image, "true");
        assertThat(syslog.exitCode()).isEqualTo(125);
        assertThat(syslog.err()).contains("log driver \"syslog\"");
    }

    @Test
    void isolationDefaultIsShownBackAsGiven() {
        docker.ok("create", "--name", "isodefault", "--isolation", "default", image, "true");
        docker.ok("create", "--name", "isonone", image, "true");
        try {
            assertThat(out("inspect", "--format", "{{.HostConfig.Isolation}}", "isodefault")).isEqualTo("default");
            assertThat(out("inspect", "--format", "{{.HostConfig.Isolation}}", "isonone")).isEqualTo("container");
        } finally {
            docker.ok("rm", "isodefault", "isonone");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"--cap-add=NET_ADMIN", "--security-opt=no-new-privileges", "--ulimit=nofile=10",
            "--shm-size=8m", "--sysctl=net.ipv4.tcp_syncookies=0"})
    void theVmIsolationRefusesWhatKilnInitDoesNotApplyWithoutBooting(String flag) {
        DockerCli.Result r = docker.run("run", "--rm", "--isolation", "vm", flag, image, "true");
        assertThat(r.exitCode()).as(r.err()).isEqualTo(125);
        assertThat(r.err()).contains("the vm isolation does not support " + flag.substring(0, flag.indexOf('='))
                .replace("--security-opt", "--security-opt no-new-privileges"));
        assertThat(daemonError(r)).hasSize(1);
    }

    @Test
    void gvisorHonoursCapabilitiesUlimitsAndInitAndRefusesDevices() {
        Command.require("runsc", "runsc");
        assertThat(out("run", "--rm", "--runtime", "runsc", "--network", "none", "--cap-drop", "ALL", "--cap-add",
                "KILL", "--ulimit", "nofile=512:1024", "--init", image, "sh", "-c",
                "busybox grep CapEff: /proc/self/status; ulimit -n; echo $$").lines().toList())
                .as("CAP_KILL is bit 5; the shell is not PID 1 under --init")
                .containsExactly("CapEff:\t0000000000000020", "512", "2");
        DockerCli.Result device = docker.run("run", "--rm", "--runtime", "runsc", "--device", "/dev/zero", image,
                "true");
        assertThat(device.exitCode()).isEqualTo(125);
        assertThat(device.err()).contains("gvisor isolation does not support --device");
    }

    @Test
    void importChangesAreRefusedNotDropped() throws Exception {
        Path dir = Files.createDirectories(work.resolve("import-root"));
        Files.writeString(dir.resolve("file"), "x");
        Path tar = work.resolve("import.tar");
        Command.run("tar", "-C", dir.toString(), "-cf", tar.toString(), ".");
        DockerCli.Result changed = docker.run("import", "--change", "CMD [\"sh\"]", tar.toString(), "imported:1");
        assertThat(changed.exitCode()).isNotZero();
        assertThat(changed.err()).contains("import --change");
        assertThat(docker.ok("images", "-q", "imported:1")).isBlank();
    }

    @Test
    void badValuesAreOneLineRefusals() {
        // what the docker CLI checks itself (ulimit syntax, --uts, --device-cgroup-rule) never reaches kilnd; these do
        for (String[] flag : new String[][]{{"--security-opt", "label=disable"}, {"--cap-add", "SYS_NOPE"},
                {"--device", "/dev/no-such"}, {"--pid", "container:x"}}) {
            DockerCli.Result r = docker.run("run", "--rm", flag[0], flag[1], image, "true");
            assertThat(r.exitCode()).as(String.join(" ", flag)).isNotZero();
            assertThat(r.exitCode()).as(r.err()).isEqualTo(125);
            assertThat(daemonError(r)).as(r.err()).hasSize(1);
        }
        assertThat(docker.ok("ps", "-aq")).isBlank();
    }
}
