package dev.kiln.isolation.vm;

import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.Resources;
import dev.kiln.isolation.RunningProcess;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.SandboxStats;
import dev.kiln.isolation.SandboxTask;
import dev.kiln.isolation.ExitStatus;
import dev.kiln.isolation.LogReader;
import dev.kiln.isolation.shim.Shim;
import dev.kiln.testing.BusyboxRootfs;
import dev.kiln.testing.Command;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The vm isolation driven as the engine drives it: real QEMU (TCG here), the host's cloud kernel, kiln-init, a busybox
 * image. Slow (a boot is seconds without KVM), so the boots are few and every wait is bounded.
 */
@Tag("slow")
class VmIsolatorTest {

    static final Duration BOOT_AND_RUN = Duration.ofSeconds(120);
    static final List<String> ENV = List.of("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");

    @TempDir
    static Path root;
    static Path image;
    static VmIsolator vm;
    final List<SandboxSpec> made = new ArrayList<>();

    @BeforeAll
    static void image() throws IOException {
        Command.require(QemuCommand.BINARY, "qemu-system-x86");
        Command.require("mkfs.erofs", "erofs-utils");
        image = BusyboxRootfs.create(root.resolve("rootfs"));
        vm = new VmIsolator(VmOptions.defaults(root.resolve("state")));
    }

    @AfterEach
    void cleanUp() {
        for (SandboxSpec s : made) {
            vm.cleanup(s, true);
            assertThat(vmmAlive(s)).as("no VM left running for " + s.id()).isFalse();
        }
    }

    @Test
    void runsTheCommandAndReportsItsOutputAndExitCode() {
        SandboxSpec s = sandbox("hi", process("sh", "-c", "echo hi; echo err >&2; exit 7"));
        ExitStatus status = run(s);
        assertThat(status.exitCode()).isEqualTo(7);
        assertThat(log(s, "stdout")).isEqualTo("hi\n");
        assertThat(log(s, "stderr")).isEqualTo("err\n");
        System.out.println("vm timings (ms since the relay started): " + read(VmIsolator.vmDir(s).resolve("timings.json")));
    }

    @Test
    void aMissingCommandExits127() {
        SandboxSpec s = sandbox("missing", process("no-such-command"));
        assertThat(run(s).exitCode()).isEqualTo(127);
        assertThat(log(s, "stderr")).contains("no-such-command").contains("No such file or directory");
    }

    @Test
    void honoursEnvWorkingDirectoryUserAndHostname() {
        List<String> env = new ArrayList<>(ENV);
        env.add("GREETING=hello vm");
        ProcessSpec p = new ProcessSpec(List.of("sh", "-c", "echo \"$GREETING\"; pwd; id -u; id -g; id -G; hostname;"
                + " cat /etc/hostname; grep -c vmhost /etc/hosts"), env, "/home/app", 1000, 1000, List.of(2000),
                false, false);
        SandboxSpec s = sandbox("vmhost", p);
        assertThat(run(s).exitCode()).isZero();
        assertThat(log(s, "stdout")).isEqualTo("hello vm\n/home/app\n1000\n1000\n1000 2000\nvmhost\nvmhost\n1\n");
    }

    @Test
    void execTopStatsAndAGracefulStop() throws Exception {
        SandboxSpec s = sandbox("exec", process("sh", "-c",
                "trap 'echo stopping; exit 0' TERM; echo ready; while true; do sleep 1; done"));
        vm.create(s);
        SandboxTask main = vm.start(s, Duration.ZERO);
        awaitLog(s.dir().resolve("log.json"), "ready\n");

        // issue 11: the relay and its VMM are held by the sandbox's memory cgroup, the guest's memory plus overhead
        long relay = Shim.adopt(s.dir().resolve("main")).started().orElseThrow().pid();
        long vmm = Long.parseLong(read(VmIsolator.vmDir(s).resolve("vmm.pid")).strip());
        Path cgroup = memoryCgroup(relay);
        assertThat(cgroup.toString()).endsWith("/kiln/" + s.id());
        assertThat(memoryCgroup(vmm)).isEqualTo(cgroup);
        long limit = (VmOptions.DEFAULT_MEMORY + VmIsolator.VMM_OVERHEAD
                + (QemuCommand.kvmUsable() ? 0 : QemuCommand.TCG_CACHE));
        assertThat(Long.parseLong(read(cgroup.resolve(Files.exists(cgroup.resolve("memory.max")) ? "memory.max"
                : "memory.limit_in_bytes")).strip())).isEqualTo(limit);

        RunningProcess x = main.exec("exec1", process("sh", "-c", "echo $$; cat /etc/hostname; echo oops >&2; exit 3"),
                Duration.ZERO);
        ExitStatus xs = x.await(Duration.ofSeconds(60)).orElseThrow();
        assertThat(xs.exitCode()).isEqualTo(3);
        Path execLog = s.dir().resolve("x/exec1/log.json");
        assertThat(text(execLog, "stdout")).matches("\\d+\nexec\n");
        assertThat(text(execLog, "stderr")).isEqualTo("oops\n");

        RunningProcess missing = main.exec("exec2", process("nope"), Duration.ZERO);
        assertThat(missing.await(Duration.ofSeconds(60)).orElseThrow().exitCode()).isEqualTo(127);

        // killed by a signal in the guest: Docker's 137, an exit status of the exec relay (never a signal it raises)
        RunningProcess killed = main.exec("exec4", process("sh", "-c", "kill -KILL $$"), Duration.ZERO);
        assertThat(killed.await(Duration.ofSeconds(60)).orElseThrow().exitCode()).isEqualTo(137);

        ProcessSpec cat = new ProcessSpec(List.of("cat"), ENV, "/", 0, 0, List.of(), false, true);
        RunningProcess withStdin = main.exec("exec3", cat, Duration.ofSeconds(10));
        StringBuilder echoed = new StringBuilder();
        try (var c = withStdin.attach()) {
            c.stdin("piped\n".getBytes());
            c.closeStdin();
            for (var f = c.read(); f != null && f.type() != 3; f = c.read()) echoed.append(f.text());
        }
        assertThat(echoed.toString()).isEqualTo("piped\n");
        assertThat(withStdin.await(Duration.ofSeconds(30)).orElseThrow().exitCode()).isZero();

        assertThat(main.top()).contains("PID").contains("sleep");
        SandboxStats stats = main.stats();
        assertThat(stats.memoryBytes()).isPositive();
        assertThat(stats.cpuNanos()).isPositive();

        main.kill(15);
        ExitStatus status = main.await(Duration.ofSeconds(30)).orElseThrow();
        assertThat(status.exitCode()).isZero();
        assertThat(log(s, "stdout")).isEqualTo("ready\nstopping\n"); // exec output never reaches the main log
        assertThat(vmmAlive(s)).isFalse();
        vm.cleanup(s, false);
        assertThat(cgroup).as("the sandbox's cgroup, removed at its cleanup").doesNotExist();
    }

    /** A process's memory cgroup directory: cgroup v1's memory hierarchy where there is one, else the unified one. */
    static Path memoryCgroup(long pid) {
        List<String> lines = read(Path.of("/proc", Long.toString(pid), "cgroup")).lines().toList();
        for (String line : lines) {
            String[] f = line.split(":", 3);
            if (List.of(f[1].split(",")).contains("memory")) return Path.of("/sys/fs/cgroup/memory" + f[2]);
        }
        return Path.of("/sys/fs/cgroup" + lines.stream().filter(l -> l.startsWith("0::")).findFirst().orElseThrow()
                .substring(3));
    }

    @Test
    void sigkillEndsTheVm() {
        SandboxSpec s = sandbox("kill", process("sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"));
        vm.create(s);
        SandboxTask main = vm.start(s, Duration.ZERO);
        awaitLog(s.dir().resolve("log.json"), "ready\n");

        // issue 11: the relay and its VMM are held by the sandbox's memory cgroup, the guest's memory plus overhead
        long relay = Shim.adopt(s.dir().resolve("main")).started().orElseThrow().pid();
        long vmm = Long.parseLong(read(VmIsolator.vmDir(s).resolve("vmm.pid")).strip());
        Path cgroup = memoryCgroup(relay);
        assertThat(cgroup.toString()).endsWith("/kiln/" + s.id());
        assertThat(memoryCgroup(vmm)).isEqualTo(cgroup);
        long limit = (VmOptions.DEFAULT_MEMORY + VmIsolator.VMM_OVERHEAD
                + (QemuCommand.kvmUsable() ? 0 : QemuCommand.TCG_CACHE));
        assertThat(Long.parseLong(read(cgroup.resolve(Files.exists(cgroup.resolve("memory.max")) ? "memory.max"
                : "memory.limit_in_bytes")).strip())).isEqualTo(limit);
        main.kill(9);
        ExitStatus status = main.await(Duration.ofSeconds(20)).orElseThrow();
        assertThat(status.exitCode()).isEqualTo(137);
        assertThat(vmmAlive(s)).isFalse();
    }

    @Test
    void twoVmsOfOneImageDoNotSeeEachOthersWrites() {
        SandboxSpec a = sandbox("a", process("sh", "-c", "ls /mark 2>/dev/null; echo a > /mark; sleep 2; cat /mark"));
        SandboxSpec b = sandbox("b", process("sh", "-c", "ls /mark 2>/dev/null; echo b > /mark; sleep 2; cat /mark"));
        vm.create(a);
        vm.create(b);
        SandboxTask sa = vm.start(a, Duration.ZERO);
        SandboxTask sb = vm.start(b, Duration.ZERO);
        assertThat(sa.await(BOOT_AND_RUN).orElseThrow().exitCode()).isZero();
        assertThat(sb.await(BOOT_AND_RUN).orElseThrow().exitCode()).isZero();
        assertThat(log(a, "stdout")).isEqualTo("a\n");
        assertThat(log(b, "stdout")).isEqualTo("b\n");
        // one shared image disk (beside the one empty ext4 each writable disk is copied from: WritableDisk)
        assertThat(root.resolve("state/vm-disks").toFile().list()).hasSize(2)
                .anyMatch(n -> n.endsWith(".erofs")).anyMatch(n -> n.matches("empty-\\d+\\.ext4"));
    }

    @Test
    void aKernelThatCannotBootEndsWithAClearError() throws IOException {
        Path bogus = Files.write(root.resolve("vmlinuz-bogus"), new byte[4096]);
        VmIsolator broken = new VmIsolator(VmOptions.defaults(root.resolve("state")).withKernel(bogus));
        SandboxSpec s = sandbox("bogus", process("true"));
        broken.create(s);
        ExitStatus status = broken.start(s, Duration.ZERO).await(Duration.ofSeconds(30)).orElseThrow();
        assertThat(status.exitCode()).isEqualTo(125);
        assertThat(log(s, "stderr")).contains("the VM stopped before its workload exited");
    }

    @Test
    void aGuestThatDoesNotAnswerInTimeIsStopped() {
        VmIsolator impatient = new VmIsolator(VmOptions.defaults(root.resolve("state"))
                .withHelloTimeout(Duration.ofSeconds(1)));
        SandboxSpec s = sandbox("slow", process("true"));
        impatient.create(s);
        long t0 = System.nanoTime();
        ExitStatus status = impatient.start(s, Duration.ZERO).await(Duration.ofSeconds(30)).orElseThrow();
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(15));
        assertThat(status.exitCode()).isEqualTo(125);
        assertThat(log(s, "stderr")).contains("the VM did not answer within 1 s");
        assertThat(vmmAlive(s)).isFalse();
    }

    // ---- helpers ----

    static ProcessSpec process(String... args) {
        return new ProcessSpec(List.of(args), ENV, "/", 0, 0, List.of(), false, false);
    }

    SandboxSpec sandbox(String name, ProcessSpec p) {
        String id = name + "-" + Long.toHexString(System.nanoTime());
        SandboxSpec s = new SandboxSpec(id, name, name, p, image, false, Resources.UNLIMITED, Map.of(), List.of(),
                root.resolve("sandboxes").resolve(id));
        try {
            Files.createDirectories(s.dir());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        made.add(s);
        return s;
    }

    static ExitStatus run(SandboxSpec s) {
        vm.create(s);
        ExitStatus status = vm.start(s, Duration.ZERO).await(BOOT_AND_RUN).orElseThrow();
        if (status.exitCode() == 125) {
            System.out.println("sandbox " + s.id() + " failed: " + log(s, "stderr") + read(VmIsolator.vmDir(s)
                    .resolve("shim.log")) + read(s.dir().resolve("main/shim.log")));
        }
        return status;
    }

    static String log(SandboxSpec s, String stream) {
        return text(s.dir().resolve("log.json"), stream);
    }

    static String text(Path log, String stream) {
        return new LogReader(log).all().stream().filter(r -> r.stream().equals(stream)).map(LogReader.LogRecord::text)
                .collect(Collectors.joining());
    }

    static void awaitLog(Path log, String text) {
        long deadline = System.nanoTime() + BOOT_AND_RUN.toNanos();
        while (!text(log, "stdout").contains(text)) {
            assertThat(System.nanoTime() - deadline).as("waiting for \"" + text.strip() + "\" in " + log).isNegative();
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
    }

    static boolean vmmAlive(SandboxSpec s) {
        try {
            long pid = Long.parseLong(Files.readString(VmIsolator.vmDir(s).resolve("vmm.pid")).strip());
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            char state = stat.charAt(stat.lastIndexOf(')') + 2);
            return stat.contains("(qemu-system") && state != 'Z' && state != 'X';
        } catch (IOException | NumberFormatException e) {
            return false;
        }
    }

    static String read(Path file) {
        try {
            return Files.readString(file).strip();
        } catch (IOException e) {
            return "(" + file + " missing)";
        }
    }
}
