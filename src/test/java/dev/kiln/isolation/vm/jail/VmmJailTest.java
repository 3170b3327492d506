package dev.kiln.isolation.vm.jail;

import static org.assertj.core.api.Assertions.assertThat;

import dev.kiln.isolation.shim.ShimBinary;
import dev.kiln.rootfs.Trees;
import dev.kiln.testing.Command;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The VMM's jail and filter, real (kernel namespaces, pivot_root, seccomp), without a VM: the relay starts a small
 * static probe exactly as it starts QEMU (same kiln-shim code path, QEMU's compiled filter), and the probe makes one
 * system call. Outside the allowlist the kernel kills it, and the relay says so in one line; inside, it returns.
 * The same jail around a real QEMU is VmJailTest's (slow).
 */
class VmmJailTest {

    private static final int UID = 100_065_000; // in the default range; owns nothing here (VmmIds.Range.checkUnowned)
    private Path dir;
    private Path probe;
    private Process relay;

    @BeforeEach
    void setUp() throws IOException, InterruptedException {
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "the jail needs root");
        Path cc = Command.which("musl-gcc");
        Assumptions.assumeTrue(cc != null, "musl-gcc not found (install musl-tools) to build the probe");
        VmmIds.Range.parse(VmmIds.DEFAULT_RANGE).checkUnowned();
        dir = Files.createTempDirectory("kiln-jail-");
        Path source = dir.resolve("jail-probe.c");
        try (InputStream in = VmmJailTest.class.getResourceAsStream("jail-probe.c")) {
            Files.write(source, in.readAllBytes());
        }
        probe = dir.resolve("probe");
        Command.run(Duration.ofSeconds(60), List.of(cc.toString(), "-static", "-Os", "-Wall", "-Wextra", "-Werror",
                "-o", probe.toString(), source.toString()));
        Path vm = Files.createDirectories(dir.resolve("vm"));
        Files.write(vm.resolve("start.spec"), "arg=true\0".getBytes());
        Files.createDirectories(vm.resolve("jail"));
        Path run = Files.createDirectories(vm.resolve(VmmJail.RUN));
        Files.setAttribute(run, "unix:uid", UID);
        Files.setAttribute(run, "unix:gid", UID);
        Files.writeString(vm.resolve("jail.mounts"), "exec\t" + probe + "\nrw\t" + run + "\ndev\t/dev/null\n");
        Files.write(vm.resolve("seccomp.bpf"), BpfProgram.compile(SeccompAllowlist.qemu().rulesFor(Set.of())).bytes());
    }

    @AfterEach
    void tearDown() {
        if (relay != null && relay.isAlive()) Command.destroyTree(relay.toHandle());
        if (dir != null) Trees.delete(dir);
    }

    private Process start(String call, String mounts) throws IOException {
        Path vm = dir.resolve("vm");
        List<String> cmd = new ArrayList<>(List.of(ShimBinary.locate().toString(), "--relay-vm", "--dir",
                vm.toString(), "--spec", vm.resolve("start.spec").toString(), "--hello-timeout", "10",
                "--console-stdout", "--ctl-sock", "run/ctl.sock", "--jail", vm.resolve("jail").toString(),
                "--jail-uid", Integer.toString(UID), "--jail-gid", Integer.toString(UID),
                "--jail-mounts", vm.resolve(mounts).toString(), "--seccomp", vm.resolve("seccomp.bpf").toString(),
                "--", probe.toString(), call));
        return relay = new ProcessBuilder(cmd).redirectOutput(dir.resolve("stdout").toFile())
                .redirectError(dir.resolve("stderr").toFile()).start();
    }

    private record Ended(int code, String stderr, String console) {}

    private Ended run(String call) throws IOException, InterruptedException {
        Process p = start(call, "jail.mounts");
        assertThat(p.waitFor(20, TimeUnit.SECONDS)).as("the relay ends (no hang)").isTrue();
        return new Ended(p.exitValue(), Files.readString(dir.resolve("stderr")),
                Files.readString(dir.resolve("vm/boot.log")));
    }

    @Test
    void aCallOutsideTheAllowlistKillsTheVmmAndTheRelaySaysSoInOneLine() throws Exception {
        for (String call : List.of("mount", "ptrace", "netlink")) {
            Ended e = run(call);
            assertThat(e.console()).as(call).isEqualTo("probe: started\n"); // it never returned from the call
            assertThat(e.code()).as(call).isEqualTo(125);
            assertThat(e.stderr().lines().toList()).as(call).containsExactly("kiln: the VMM was killed by its "
                    + "seccomp filter (SIGSYS: a system call outside its allowlist); the VM is gone (see "
                    + dir.resolve("vm") + "/vmm.log)");
        }
    }

    @Test
    void aCallInTheAllowlistReturns() throws Exception {
        Ended e = run("unix"); // socket(AF_UNIX): QEMU's sockets
        assertThat(e.console()).isEqualTo("probe: started\nprobe: unix returned 3 (ok)\n");
        assertThat(e.stderr()).doesNotContain("seccomp");
    }

    @Test
    void theVmmRunsUnprivilegedAloneInItsOwnRoot() throws Exception {
        Process p = start("wait", "jail.mounts");
        Path pidFile = dir.resolve("vm/vmm.pid");
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!(Files.exists(pidFile) && Files.readString(dir.resolve("vm/boot.log")).contains("started"))) {
            assertThat(System.nanoTime()).as("the probe starts").isLessThan(deadline);
            Thread.sleep(20);
        }
        long pid = Long.parseLong(Files.readString(pidFile).strip());
        Map<String, String> status = Files.readAllLines(Path.of("/proc", Long.toString(pid), "status")).stream()
                .map(l -> l.split(":\\s*", 2)).filter(f -> f.length == 2)
                .collect(Collectors.toMap(f -> f[0], f -> f[1].strip(), (a, b) -> a));
        assertThat(status.get("Uid")).isEqualTo(UID + "\t" + UID + "\t" + UID + "\t" + UID);
        assertThat(status.get("Gid")).isEqualTo(UID + "\t" + UID + "\t" + UID + "\t" + UID);
        assertThat(status.get("Groups")).isEmpty();
        for (String caps : List.of("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")) {
            assertThat(status.get(caps)).as(caps).isEqualTo("0000000000000000");
        }
        assertThat(status.get("NoNewPrivs")).isEqualTo("1");
        assertThat(status.get("Seccomp")).isEqualTo("2");
        assertThat(status.get("NSpid")).endsWith("\t1"); // PID 1 of a pid namespace of its own
        for (String ns : List.of("mnt", "pid", "ipc", "uts")) {
            assertThat(Files.readSymbolicLink(Path.of("/proc", Long.toString(pid), "ns", ns)))
                    .as(ns).isNotEqualTo(Files.readSymbolicLink(Path.of("/proc/self/ns", ns)));
        }
        // its root holds the jail's paths only: the probe's, the sockets' directory's, /dev/null, and nothing else
        Path root = Path.of("/proc", Long.toString(pid), "root");
        String top = dir.getRoot().relativize(dir).getName(0).toString(); // "tmp"
        try (var list = Files.list(root)) {
            assertThat(list.map(f -> f.getFileName().toString()).toList()).containsExactlyInAnyOrder("dev", top);
        }
        try (var list = Files.list(root.resolve("dev"))) {
            assertThat(list.map(f -> f.getFileName().toString()).toList()).containsExactly("null");
        }
        assertThat(Files.isWritable(root)).as("its root is read-only").isFalse();
        p.destroy(); // SIGTERM to the relay: the probe (PDEATHSIG) goes with it
        assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
        assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)).isFalse();
    }

    @Test
    void aJailThatCannotBeSetUpIsOneLineAnd125() throws Exception {
        Path vm = dir.resolve("vm");
        Files.writeString(vm.resolve("bad.mounts"), "exec\t" + probe + "\nro\t" + dir.resolve("missing") + "\n");
        Process p = start("wait", "bad.mounts");
        assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).isEqualTo(125);
        assertThat(Files.readString(dir.resolve("stderr")).lines().toList()).containsExactly(
                "kiln: cannot start the VMM: " + dir.resolve("missing") + ": No such file or directory");
    }
}
