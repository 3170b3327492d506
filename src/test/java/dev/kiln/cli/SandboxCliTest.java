package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testing.BusyboxRootfs;
import dev.kiln.testing.Command;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The sandbox life-cycle as a user drives it, one contract for every isolation: the same commands and the same
 * answers under runc ({@code container}), runsc ({@code gvisor}) and QEMU ({@code vm}).
 */
class SandboxCliTest {

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
        kiln.ok("prune");
        kiln.close();
    }

    static void requireRuntime(String isolation) {
        if (isolation.equals("gvisor")) {
            Command.require("runsc", "runsc");
        }
        if (isolation.equals("vm")) {
            dev.kiln.testing.VmTests.require();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor", "vm"})
    void runPrintsOutputAndExitsWithTheSandboxCode(String isolation) {
        requireRuntime(isolation);
        KilnRun.Result hi = kiln.kiln("run", "--rm", "--isolation", isolation, IMAGE, "echo", "hi");
        assertThat(hi.exitCode()).isZero();
        assertThat(hi.out()).isEqualTo("hi\n");

        KilnRun.Result seven = kiln.kiln("run", "--rm", "--isolation", isolation, IMAGE, "sh", "-c",
                "echo out; echo err >&2; exit 7");
        assertThat(seven.exitCode()).isEqualTo(7);
        assertThat(seven.out()).isEqualTo("out\n");
        assertThat(seven.err()).isEqualTo("err\n");

        KilnRun.Result missing = kiln.kiln("run", "--rm", "--isolation", isolation, IMAGE, "no-such-command");
        assertThat(missing.exitCode()).isEqualTo(127);
        assertThat(missing.errLines()).singleElement().asString().contains("executable file not found");

        KilnRun.Result notExecutable = kiln.kiln("run", "--rm", "--isolation", isolation, IMAGE, BusyboxRootfs.NOT_EXECUTABLE);
        assertThat(notExecutable.exitCode()).isEqualTo(126);
        assertThat(notExecutable.errLines()).singleElement().asString().contains("permission denied");
        // --rm also removes sandboxes that never started
        assertThat(kiln.ok("ps", "-a", "--filter", "isolation=" + isolation, "--filter", "ancestor=" + IMAGE,
                "--format", "json").out()).doesNotContain("no-such-command").doesNotContain(BusyboxRootfs.NOT_EXECUTABLE);
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor", "vm"})
    void envCwdUserAndHostnameAreHonoured(String isolation) {
        requireRuntime(isolation);
        String out = kiln.ok("run", "--rm", "--isolation", isolation, "-e", "GREETING=hello", "-w", "/tmp",
                "-u", "app", "--hostname", "box1", IMAGE, "sh", "-c",
                "echo $GREETING; pwd; id -u; id -g; hostname; echo $HOME").out();
        assertThat(out.lines().toList()).containsExactly("hello", "/tmp", "1000", "1000", "box1", "/home/app");

        KilnRun.Result badUser = kiln.kiln("run", "--rm", "--isolation", isolation, "-u", "nobody", IMAGE, "true");
        assertThat(badUser.exitCode()).isEqualTo(125);
        assertThat(badUser.errLines()).singleElement().asString().contains("unable to find user nobody");
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor", "vm"})
    void detachedSandboxLifeCycle(String isolation) throws Exception {
        requireRuntime(isolation);
        String name = "life-" + isolation;
        String id = kiln.ok("run", "-d", "--name", name, "--isolation", isolation, "-l", "suite=kiln", IMAGE,
                "sh", "-c", "trap 'echo bye; exit 0' TERM; echo started; while true; do sleep 0.2; done").out().strip();
        assertThat(id).matches("[a-f0-9]{64}");
        awaitLog(name, "started");

        assertThat(kiln.ok("ps", "-q").out().lines()).contains(id.substring(0, 12));
        assertThat(kiln.ok("ps", "--filter", "label=suite=kiln", "--format", "json").out()).contains(id);
        assertThat(kiln.ok("ps", "--filter", "label=suite=other", "-q").out()).isEmpty();

        KilnRun.Result exec = kiln.kiln("exec", name, "sh", "-c", "echo from exec; exit 3");
        assertThat(exec.exitCode()).as(exec.err()).isEqualTo(3);
        assertThat(exec.out()).isEqualTo("from exec\n");

        KilnRun.Result stdin = kiln.withStdin("piped\n".getBytes(), "exec", "-i", name, "cat");
        assertThat(stdin.out()).isEqualTo("piped\n");

        // the loop's sleep is there nearly always; on a loaded host (gVisor's fork and exec are slow) top can catch the
        // moment between two, with only the shell's fresh fork: a few looks, as a user would look again
        String top = kiln.ok("top", name).out();
        for (int look = 0; look < 5 && !top.contains("sleep"); look++) top = kiln.ok("top", name).out();
        assertThat(top).contains("sleep");

        JsonNode inspect = new ObjectMapper().readTree(kiln.ok("inspect", name).out()).get(0);
        assertThat(inspect.at("/State/Status").asText()).isEqualTo("running");
        assertThat(inspect.at("/HostConfig/Isolation").asText()).isEqualTo(isolation);

        kiln.ok("stop", "-t", "5", name);
        assertThat(kiln.ok("logs", name).out()).contains("started\n").contains("bye\n");
        inspect = new ObjectMapper().readTree(kiln.ok("inspect", name).out()).get(0);
        assertThat(inspect.at("/State/Status").asText()).isEqualTo("exited");
        assertThat(inspect.at("/State/ExitCode").asInt()).isZero();
        assertThat(kiln.ok("wait", name).out().strip()).isEqualTo("0");

        kiln.ok("rename", name, name + "-renamed");
        kiln.ok("rm", name + "-renamed");
        KilnRun.Result gone = kiln.kiln("inspect", name + "-renamed");
        assertThat(gone.exitCode()).isEqualTo(125);
        assertThat(gone.errLines()).singleElement().asString().contains("no such object");
        assertNoLeftovers(id);
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor", "vm"})
    void logsFollowUntilExitAndKillAndRestartWork(String isolation) {
        requireRuntime(isolation);
        String name = "follow-" + isolation;
        kiln.ok("run", "-d", "--name", name, "--isolation", isolation, IMAGE, "sh", "-c",
                "for i in 1 2 3; do echo line $i; sleep 0.3; done");
        assertThat(kiln.ok("logs", "-f", name).out()).isEqualTo("line 1\nline 2\nline 3\n");
        assertThat(kiln.ok("logs", "--tail", "1", name).out()).isEqualTo("line 3\n");
        assertThat(kiln.ok("logs", "--since", "1h", name).out()).isEqualTo("line 1\nline 2\nline 3\n");
        assertThat(kiln.ok("logs", "--since", "2099-01-01T00:00:00Z", name).out()).isEmpty();
        assertThat(kiln.ok("logs", "-t", name).out().lines().findFirst().orElseThrow())
                .matches("\\d{4}-\\d\\d-\\d\\dT.*Z line 1");
        KilnRun.Result boot = kiln.kiln("logs", "--boot", name);
        if (isolation.equals("vm")) {
            assertThat(boot.exitCode()).as(boot.err()).isZero();
            // kiln-init's last line: the relay ends QEMU once the guest has synced, before the kernel's own
            // "reboot: Power down" (docs/guest-protocol.md)
            assertThat(boot.out()).as("the guest's console, which ended with the workload")
                    .contains("kiln-init: powering off");
        } else {
            assertThat(boot.exitCode()).isEqualTo(125);
            assertThat(boot.errLines()).singleElement().asString().contains("--boot is for the vm isolation");
        }

        kiln.ok("restart", name);
        assertThat(kiln.ok("logs", "-f", name).out()).isEqualTo("line 1\nline 2\nline 3\n".repeat(2));

        kiln.ok("start", name);
        kiln.ok("kill", name);
        assertThat(kiln.ok("wait", name).out().strip()).isEqualTo("137");
        KilnRun.Result notRunning = kiln.kiln("exec", name, "true");
        assertThat(notRunning.exitCode()).isEqualTo(125);
        assertThat(notRunning.errLines()).singleElement().asString().contains("is not running");
        kiln.ok("rm", name);
    }

    @Test
    void interactiveStdinAndTtyReachTheProcess() {
        KilnRun.Result cat = kiln.withStdin("one\ntwo\n".getBytes(), "run", "--rm", "-i", IMAGE, "cat");
        assertThat(cat.exitCode()).isZero();
        assertThat(cat.out()).isEqualTo("one\ntwo\n");
        KilnRun.Result tty = kiln.kiln("run", "--rm", "-t", IMAGE, "tty");
        assertThat(tty.out().strip()).startsWith("/dev/pts/");
    }

    @Test
    void interactiveTerminalInAVm() throws Exception {
        requireRuntime("vm");
        Command.require("script", "util-linux");
        // the real launcher inside a pseudo-terminal (script), typing into the guest's shell through -it
        String cli = dev.kiln.testing.KilndProcess.projectDir().resolve("bin/kiln") + " --host " + kiln.host()
                + " run --rm -it --isolation vm " + IMAGE + " sh";
        Process p = new ProcessBuilder("script", "-qec", cli, "/dev/null").redirectErrorStream(true).start();
        p.getOutputStream().write("tty; echo sum=$((6*7)); exit 3\n".getBytes());
        p.getOutputStream().close();
        assertThat(p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS)).as("the VM shell ended").isTrue();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.exitValue()).as(out).isEqualTo(3);
        assertThat(out).contains("/dev/pts/", "sum=42");
    }

    @Test
    void kernelsListsTheDefaultAndAVmBootsTheChosenKernelWithTheChosenDisk() throws Exception {
        String table = kiln.ok("kernels").out();
        assertThat(table.lines().findFirst().orElseThrow()).startsWith("DEFAULT").contains("VERSION", "PATH");
        String chosen = table.lines().skip(1).filter(l -> l.startsWith("*")).findFirst()
                .orElseThrow(() -> new AssertionError("no default kernel marked: " + table));
        String path = chosen.substring(chosen.lastIndexOf(' ') + 1);
        assertThat(java.nio.file.Path.of(path)).isRegularFile();
        for (List<String> bad : List.of(List.of("--kernel", "/no/such/vmlinuz"), List.of("--disk-size", "1m"))) {
            List<String> args = new java.util.ArrayList<>(List.of("run", "--rm", "--isolation", "vm"));
            args.addAll(bad);
            args.addAll(List.of(IMAGE, "true"));
            KilnRun.Result r = kiln.kiln(args.toArray(String[]::new));
            assertThat(r.exitCode()).as(bad.toString()).isEqualTo(125);
            assertThat(r.errLines()).as(bad.toString()).hasSize(1);
        }
        KilnRun.Result notVm = kiln.kiln("run", "--rm", "--kernel", path, IMAGE, "true");
        assertThat(notVm.exitCode()).isEqualTo(125);
        assertThat(notVm.errLines()).singleElement().asString().contains("--kernel is for the vm isolation");

        requireRuntime("vm");
        KilnRun.Result df = kiln.kiln("run", "--rm", "--isolation", "vm", "--kernel", path, "--disk-size", "256m",
                IMAGE, "df", "-k", "/");
        assertThat(df.exitCode()).as(df.err()).isZero();
        long totalKb = Long.parseLong(df.out().lines().skip(1).findFirst().orElseThrow().trim().split("\\s+")[1]);
        assertThat(totalKb).as("the writable disk's size in KiB: " + df.out()).isBetween(180_000L, 262_144L);

        String id = kiln.ok("create", "--isolation", "vm", IMAGE, "true").out().strip();
        JsonNode host = new ObjectMapper()
                .readTree(kiln.ok("inspect", id).out()).path(0).path("HostConfig");
        assertThat(host.path("Runtime").asText()).isEqualTo("qemu-system-x86_64");
        assertThat(host.path("Accelerator").asText()).as("how VMs run here").isIn("kvm", "tcg");
        kiln.ok("rm", id);
    }

    @Test
    void resourceLimitsAndReadOnlyRoot() {
        KilnRun.Result ro = kiln.kiln("run", "--rm", "--read-only", IMAGE, "touch", "/x");
        assertThat(ro.exitCode()).isNotZero();
        assertThat(ro.err()).contains("Read-only file system");
        String id = kiln.ok("run", "-d", "-m", "64m", "--pids-limit", "20", IMAGE, "sleep", "30").out().strip();
        try {
            String stats = kiln.ok("stats", "--no-stream", id).out();
            assertThat(stats).contains("/ 64MiB");
        } finally {
            kiln.ok("rm", "-f", id);
        }
        assertNoLeftovers(id);
    }

    @Test
    void badInputGetsOneLineAndExitCode125() {
        List<List<String>> cases = List.of(
                List.of("run", "--rm", "no/such-image:1", "true"),
                List.of("run", "--rm", "--isolation", "nope", IMAGE, "true"),
                List.of("run", "--rm", "--runtime", "firecracker", IMAGE, "true"),
                List.of("run", "--rm", "-m", "lots", IMAGE, "true"),
                List.of("run", "--rm", "--cpus", "-1", IMAGE, "true"),
                List.of("run", "--rm", "--name", "bad name!", IMAGE, "true"),
                List.of("stop", "no-such-sandbox"),
                List.of("logs", "no-such-sandbox"),
                List.of("exec", "no-such-sandbox", "true"));
        for (List<String> args : cases) {
            KilnRun.Result r = kiln.kiln(args.toArray(String[]::new));
            assertThat(r.exitCode()).as(args.toString()).isEqualTo(125);
            // as Docker, a missing image is announced before the pull that fails
            List<String> lines = r.errLines().stream().filter(l -> !l.startsWith("Unable to find image")).toList();
            assertThat(lines).as(args + ": " + r.err()).hasSize(1).first().asString().startsWith("kiln: ")
                    .doesNotContain("Exception");
        }
    }

    private static void awaitLog(String name, String text) throws InterruptedException {
        for (int i = 0; i < 100; i++) {
            if (kiln.ok("logs", name).out().contains(text)) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError(name + " never logged " + text);
    }

    /** What rm must leave: no sandbox directory, no mount under the root, no runtime state. */
    private static void assertNoLeftovers(String id) {
        Path dir = kiln.store().resolve("sandboxes").resolve(id.substring(0, 12));
        assertThat(dir).doesNotExist();
        try (Stream<String> mounts = Files.lines(Path.of("/proc/self/mountinfo"))) {
            assertThat(mounts.filter(l -> l.contains(id.substring(0, 12)))).isEmpty();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        for (String runtime : List.of("runc", "runsc")) {
            assertThat(root.resolve("run").resolve(runtime).resolve(id)).doesNotExist();
        }
    }
}
