package dev.kiln.cli;

import dev.kiln.testing.Command;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code kiln run/create} with the flags of issue 15 §1, checked inside the sandbox as a user would; the client-side
 * ones ({@code --env-file}, {@code --label-file}, {@code --cidfile}, a seccomp profile file); and bad input, one line
 * each with nothing created.
 */
class RunFlagsCliTest {

    @TempDir
    static Path root;
    static KilnRun kiln;
    static final String IMAGE = "kiln-test/busybox:1";

    @BeforeAll
    static void image() throws Exception {
        Command.require("runc", "runc");
        kiln = new KilnRun(root);
        kiln.importBusybox(IMAGE, java.util.Map.of());
    }

    @AfterAll
    static void stop() {
        kiln.removeSandboxes();
        kiln.close();
    }

    @Test
    void theFlagsTakeEffectInsideAContainer() {
        String out = kiln.ok("run", "--rm", "--cap-drop", "ALL", "--cap-add", "SYS_PTRACE", "--security-opt",
                "no-new-privileges", "--ulimit", "nofile=100:200", "--shm-size", "16m", "--sysctl",
                "kernel.shmmni=1234", "--group-add", "77", "--init", IMAGE, "sh", "-c",
                "grep -E 'CapEff|NoNewPrivs' /proc/self/status; ulimit -n; ulimit -Hn; df -k /dev/shm | tail -n 1; "
                        + "cat /proc/sys/kernel/shmmni; id -G; cat /proc/1/cmdline | tr '\\0' ' '").out();
        List<String> lines = out.lines().toList();
        assertThat(lines.get(0)).isEqualTo("CapEff:\t0000000000080000"); // CAP_SYS_PTRACE is bit 19
        assertThat(lines.get(1)).isEqualTo("NoNewPrivs:\t1");
        assertThat(lines.subList(2, 4)).containsExactly("100", "200");
        assertThat(lines.get(4)).contains(" 16384 ");
        assertThat(lines.get(5)).isEqualTo("1234");
        assertThat(lines.get(6)).isEqualTo("0 77");
        assertThat(lines.get(7)).startsWith("/sbin/docker-init -- sh -c");
    }

    @Test
    void readOnlyAndASeccompProfileFile() throws Exception {
        KilnRun.Result ro = kiln.kiln("run", "--rm", "--read-only", IMAGE, "touch", "/x");
        assertThat(ro.exitCode()).isEqualTo(1);
        assertThat(ro.err()).contains("Read-only file system");

        Path profile = root.resolve("deny-chroot.json");
        Files.writeString(profile, """
                {"defaultAction": "SCMP_ACT_ALLOW",
                 "syscalls": [{"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}""");
        KilnRun.Result denied = kiln.kiln("run", "--rm", "--security-opt", "seccomp=" + profile, IMAGE, "chroot",
                "/", "true");
        assertThat(denied.exitCode()).isNotZero();
        assertThat(denied.err()).contains("Operation not permitted");
        assertThat(kiln.kiln("run", "--rm", IMAGE, "chroot", "/", "true").exitCode()).isZero();
    }

    @Test
    void envFileLabelFileAndCidfileAreTheClientsJob() throws Exception {
        Path env = Files.writeString(root.resolve("env"), "# comment\nGREETING=hello\nEMPTY=\n");
        Path labels = Files.writeString(root.resolve("labels"), "team=kiln\n# no\ntier=web\n");
        Path cid = root.resolve("cid");
        String out = kiln.ok("run", "--rm", "--env-file", env.toString(), "--label-file", labels.toString(), IMAGE,
                "sh", "-c", "echo $GREETING; env | grep -c '^EMPTY=$'").out();
        assertThat(out).isEqualTo("hello\n1\n");

        String id = kiln.ok("create", "--cidfile", cid.toString(), "--label-file", labels.toString(), "-l",
                "tier=db", IMAGE, "true").out().strip();
        assertThat(Files.readString(cid)).isEqualTo(id);
        assertThat(inspect(id).path("Config").path("Labels").toString())
                .isEqualTo("{\"team\":\"kiln\",\"tier\":\"db\"}");

        KilnRun.Result again = kiln.kiln("create", "--cidfile", cid.toString(), IMAGE, "true");
        assertThat(again.exitCode()).isEqualTo(125);
        assertThat(again.errLines()).hasSize(1);
        assertThat(again.err()).contains("container ID file found");
        kiln.ok("rm", id);
        assertThat(kiln.ok("ps", "-a", "-q").out()).isBlank();
    }

    private static com.fasterxml.jackson.databind.JsonNode inspect(String id) {
        try {
            com.fasterxml.jackson.databind.JsonNode doc = new com.fasterxml.jackson.databind.ObjectMapper()
                    .readTree(kiln.ok("inspect", id).out());
            return doc.isArray() ? doc.get(0) : doc;
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void inspectShowsTheSettings() {
        String id = kiln.ok("create", "--cap-add", "net_admin", "--ulimit", "core=0", "--stop-timeout", "4",
                "--pid", "host", IMAGE, "true").out().strip();
        try {
            var host = inspect(id).path("HostConfig");
            assertThat(host.path("CapAdd").toString()).isEqualTo("[\"CAP_NET_ADMIN\"]");
            assertThat(host.path("Ulimits").get(0).path("Soft").asLong()).isZero();
            assertThat(host.path("PidMode").asText()).isEqualTo("host");
            assertThat(host.path("Isolation").asText()).isEqualTo("container");
        } finally {
            kiln.ok("rm", id);
        }
    }

    @Test
    void stopWaitsTheStopTimeoutNotTen() {
        kiln.ok("run", "-d", "--name", "stubborn", "--stop-timeout", "1", IMAGE, "sh", "-c",
                "trap '' TERM; while true; do sleep 1; done");
        long t0 = System.nanoTime();
        kiln.ok("stop", "stubborn");
        assertThat((System.nanoTime() - t0) / 1_000_000_000L).as("SIGKILL after 1 s").isLessThan(6);
        kiln.ok("rm", "stubborn");
    }

    @Test
    void gvisorTakesCapabilitiesAndRefusesHostDevices() {
        Command.require("runsc", "runsc");
        assertThat(kiln.ok("run", "--rm", "--isolation", "gvisor", "--cap-drop", "ALL", IMAGE, "grep", "CapEff",
                "/proc/self/status").out().strip()).isEqualTo("CapEff:\t0000000000000000");
        KilnRun.Result device = kiln.kiln("run", "--rm", "--isolation", "gvisor", "--device", "/dev/zero", IMAGE,
                "true");
        assertThat(device.exitCode()).isEqualTo(125);
        assertThat(device.errLines()).hasSize(1);
        assertThat(device.err()).contains("the gvisor isolation does not support --device");
    }

    @Test
    void badInputIsOneLineAndCreatesNothing() {
        String[][] bad = {
                {"--ulimit", "nofile"}, {"--ulimit", "bogus=1"}, {"--ulimit", "nofile=10:5"},
                {"--sysctl", "vm.swappiness=1"}, {"--sysctl", "novalue"}, {"--cap-add", "FOO"},
                {"--device", "relative/dev"}, {"--device", "/dev/no-such-device"},
                {"--security-opt", "seccomp=/no/such/profile.json"}, {"--security-opt", "apparmor=x"},
                {"--pid", "container:x"}, {"--cgroupns", "sideways"}, {"--device-cgroup-rule", "x 1:2 r"},
                {"--memory-swappiness", "101"}, {"--log-driver", "syslog"}, {"--shm-size", "lots"},
                {"--cpuset-cpus", "zero"}, {"--group-add", "nosuchgroup"}, {"--isolation=vm", "--cap-add=KILL"},
                {"--isolation=vm", "--ulimit=nofile=10"}};
        for (String[] flags : bad) {
            List<String> args = new java.util.ArrayList<>(List.of("run", "--rm"));
            args.addAll(List.of(flags));
            args.addAll(List.of(IMAGE, "true"));
            KilnRun.Result r = kiln.kiln(args.toArray(String[]::new));
            assertThat(r.exitCode()).as(String.join(" ", flags) + ": " + r.err()).isEqualTo(125);
            assertThat(r.errLines()).as(String.join(" ", flags)).hasSize(1);
        }
        assertThat(kiln.ok("ps", "-a", "-q").out()).isBlank();
    }

    @Tag("slow")
    @Test
    void theVmRunsItsCommandUnderKilnInitWhichIsAlreadyPidOne() {
        dev.kiln.testing.VmTests.require();
        KilnRun.Result r = kiln.kiln("run", "--rm", "--isolation", "vm", "--init", "--group-add", "77", IMAGE, "sh",
                "-c", "cat /proc/1/comm; id -G");
        assertThat(r.out()).as(r.err()).isEqualTo("init\n0 77\n");
    }
}
