package dev.kiln.containerd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * kiln's vm isolation through containerd ({@code --annotation io.kiln.isolation=vm}): the bundle's rootfs booted as a
 * microVM (virtio-fs root, kiln-init, the relay, QEMU jailed), driven by {@code ctr} as a user would: output, exit
 * code, exec with and without a terminal, kill; and nothing of the VM left on the host afterwards. Two boots (TCG).
 */
@Tag("slow")
@Timeout(400)
class ContainerdVmTest {

    private static final Duration T = Duration.ofSeconds(120);
    private static final String RUNTIME = "io.containerd.kiln.v2";
    private static final String VM = "io.kiln.isolation=vm";
    private static TestContainerd containerd;

    @BeforeAll
    static void start() throws Exception {
        containerd = TestContainerd.start(Files.createTempDirectory("kv"), false, "");
    }

    @AfterAll
    static void stop() throws Exception {
        if (containerd == null) return;
        Path dir = containerd.dir;
        containerd.close();
        assertThat(containerd.shims()).as("shims left running").isEmpty();
        assertThat(Files.exists(dir)).isFalse();
    }

    @Test
    void runsTheImageInAVmWithItsOutputAndExitCode() throws Exception {
        TestContainerd.Result r = containerd.ctr(T, "run", "--rm", "--runtime", RUNTIME, "--annotation", VM,
                TestContainerd.IMAGE, "v1", "sh", "-c", "echo out; echo err >&2; echo hi > /written; uname -r; "
                        + "cat /proc/1/cmdline; exit 3");
        assertThat(r.code()).as(r.err()).isEqualTo(3);
        assertThat(r.out()).startsWith("out\n");
        // the guest's own kernel, with kiln-init as its PID 1 (a container would show the host's init or sh)
        assertThat(r.out()).contains("/init");
        assertThat(r.err()).contains("err");
        assertThat(containerd.ctr(T, "c", "ls", "-q").out()).doesNotContain("v1");
        assertThat(vmProcesses()).as("qemu, virtiofsd or relays left").isEmpty();
        assertThat(containerd.mounts()).noneMatch(m -> m.contains("v1"));
    }

    @Test
    void detachedVmExecsWithAndWithoutTerminalAndIsKilled() throws Exception {
        TestContainerd.Result run = containerd.ctr(T, "run", "-d", "--runtime", RUNTIME, "--annotation", VM,
                TestContainerd.IMAGE, "v2", "sh", "-c", "echo ready > /tmp/ready; exec sleep 600");
        assertThat(run.code()).as(run.err()).isZero();
        assertThat(containerd.ctr(T, "task", "ls").out()).containsPattern("v2\\s+\\d+\\s+RUNNING");

        TestContainerd.Result exec = containerd.ctr(T, "task", "exec", "--exec-id", "e1", "v2", "sh", "-c",
                "cat /tmp/ready; echo err >&2; exit 5");
        assertThat(exec.out()).as(exec.err()).isEqualTo("ready\n");
        assertThat(exec.err()).contains("err");
        assertThat(exec.code()).isEqualTo(5);
        TestContainerd.Result tty = containerd.ctrWithTty(T, "task", "exec", "-t", "--exec-id", "e2", "v2", "tty");
        assertThat(tty.out()).as(tty.err()).contains("/dev/pts/");

        TestContainerd.Result metrics = containerd.ctr(T, "task", "metrics", "v2");
        assertThat(metrics.out()).as(metrics.err()).contains("memory.usage_in_bytes");
        String pid = containerd.ctr(T, "task", "ls").out().lines().filter(l -> l.startsWith("v2"))
                .findFirst().orElseThrow().split("\\s+")[1];
        assertThat(containerd.ctr(T, "task", "ps", "v2").out()).contains(pid);

        containerd.ctr(T, "task", "pause", "v2");
        assertThat(containerd.ctr(T, "task", "ls").out()).containsPattern("v2\\s+\\d+\\s+PAUSED");
        containerd.ctr(T, "task", "resume", "v2");
        containerd.restart();
        assertThat(containerd.ctr(T, "task", "ls").out()).as("the VM's task after containerd's restart")
                .containsPattern("v2\\s+" + pid + "\\s+RUNNING");
        TestContainerd.Result after = containerd.ctr(T, "task", "exec", "--exec-id", "e3", "v2", "cat", "/tmp/ready");
        assertThat(after.out()).as(after.err()).isEqualTo("ready\n");

        assertThat(containerd.ctr(T, "task", "kill", "-s", "SIGTERM", "v2").code()).isZero();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!containerd.ctr(T, "task", "ls").out().matches("(?s).*v2\\s+\\d+\\s+STOPPED.*")) {
            assertThat(System.nanoTime()).as("v2 stopped within 30 s").isLessThan(deadline);
            TestContainerd.sleep(200);
        }
        assertThat(containerd.ctr(T, "task", "rm", "v2").code()).isZero();
        assertThat(containerd.ctr(T, "c", "rm", "v2").code()).isZero();
        assertThat(vmProcesses()).as("qemu, virtiofsd or relays left").isEmpty();
        assertThat(containerd.mounts()).noneMatch(m -> m.contains("v2"));
    }

    /** QEMU, virtiofsd and kiln-shim relays of this containerd's VMs (their command lines name its directory). */
    private static List<String> vmProcesses() {
        return ProcessHandle.allProcesses().map(p -> p.info().commandLine().orElse(""))
                .filter(c -> c.contains(containerd.dir.toString()) && (c.contains("qemu") || c.contains("virtiofsd")
                        || c.contains("--relay-")))
                .toList();
    }
}
