package dev.kiln.containerd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * containerd-shim-kiln-v2 under a real containerd 1.6 driven by {@code ctr}, as a user would: one-shot runs for each
 * isolation (by annotation and by the runtime config file a CRI handler names), a detached task's exec (with and
 * without a terminal), ls/ps/metrics/pause, a containerd restart, kill and removal; nothing left afterwards.
 */
@Timeout(300)
class ContainerdShimTest {

    private static final Duration T = Duration.ofSeconds(60);
    private static final String RUNTIME = "io.containerd.kiln.v2";
    private static TestContainerd containerd;

    @BeforeAll
    static void start() throws Exception {
        containerd = TestContainerd.start(Files.createTempDirectory("kc"), false, "");
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
    void containerIsolationRunsTheImageWithItsOutputAndExitCode() {
        TestContainerd.Result r = containerd.ctr(T, "run", "--rm", "--runtime", RUNTIME, TestContainerd.IMAGE, "c1",
                "sh", "-c", "echo out; echo err >&2; exit 3");
        assertThat(r.out()).isEqualTo("out\n");
        assertThat(r.err()).contains("err");
        assertThat(r.code()).as(r.err()).isEqualTo(3);
        assertThat(containerd.ctr(T, "c", "ls", "-q").out()).doesNotContain("c1");
    }

    @Test
    void gvisorIsolationByAnnotation() {
        TestContainerd.Result r = containerd.ctr(T, "run", "--rm", "--runtime", RUNTIME, "--annotation",
                "io.kiln.isolation=gvisor", TestContainerd.IMAGE, "g1", "sh", "-c", "dmesg | head -1; exit 4");
        assertThat(r.out()).as(r.err()).contains("Starting gVisor");
        assertThat(r.code()).isEqualTo(4);
    }

    /** A detached gVisor task: ls/ps, exec, metrics, a containerd restart, kill; nothing of it left. */
    @Test
    void detachedGvisorTaskSurvivesARestartAndIsKilled() throws Exception {
        TestContainerd.Result run = containerd.ctr(T, "run", "-d", "--runtime", RUNTIME, "--annotation",
                "io.kiln.isolation=gvisor", TestContainerd.IMAGE, "g3", "sleep", "600");
        assertThat(run.code()).as(run.err()).isZero();
        String pid = containerd.ctr(T, "task", "ls").out().lines().filter(l -> l.startsWith("g3"))
                .findFirst().orElseThrow().split("\\s+")[1];
        assertThat(containerd.ctr(T, "task", "ps", "g3").out()).as("runsc ps: the pids inside the sandbox")
                .containsPattern("(?m)^1\\s");
        TestContainerd.Result exec = containerd.ctr(T, "task", "exec", "--exec-id", "e1", "g3", "sh", "-c",
                "dmesg | head -1; exit 6");
        assertThat(exec.out()).as(exec.err()).contains("Starting gVisor");
        assertThat(exec.code()).isEqualTo(6);
        // a terminal inside gVisor is the Sentry's own over runsc's pty: isatty holds on stdin and stdout, but busybox
        // tty prints "not a tty" there (ttyname finds no /dev/pts name for it), so that is not the check
        TestContainerd.Result tty = containerd.ctrWithTty(T, "task", "exec", "-t", "--exec-id", "et", "g3", "sh", "-c",
                "[ -t 0 ] && [ -t 1 ] && echo interactive");
        assertThat(tty.out()).as(tty.err()).contains("interactive");
        TestContainerd.Result metrics = containerd.ctr(T, "task", "metrics", "g3");
        assertThat(metrics.out()).as(metrics.err()).contains("memory.usage_in_bytes");

        containerd.restart();
        assertThat(containerd.ctr(T, "task", "ls").out()).containsPattern("g3\\s+" + pid + "\\s+RUNNING");
        TestContainerd.Result after = containerd.ctr(T, "task", "exec", "--exec-id", "e2", "g3", "echo", "again");
        assertThat(after.out()).as(after.err()).isEqualTo("again\n");

        assertThat(containerd.ctr(T, "task", "kill", "-s", "SIGKILL", "g3").code()).isZero();
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!containerd.ctr(T, "task", "ls").out().matches("(?s).*g3\\s+\\d+\\s+STOPPED.*")) {
            assertThat(System.nanoTime()).as("g3 stopped within 20 s").isLessThan(deadline);
            TestContainerd.sleep(100);
        }
        assertThat(containerd.ctr(T, "task", "rm", "g3").code()).isZero();
        assertThat(containerd.ctr(T, "c", "rm", "g3").code()).isZero();
        assertThat(ProcessHandle.of(Long.parseLong(pid))).isEmpty();
        assertThat(containerd.mounts()).noneMatch(m -> m.contains("g3"));
    }

    @Test
    void isolationFromTheRuntimeConfigFile() throws Exception {
        Path config = containerd.dir.resolve("kiln-gvisor.toml");
        Files.writeString(config, "# kiln runtime config for a CRI handler\nisolation = \"gvisor\"\n");
        TestContainerd.Result r = containerd.ctr(T, "run", "--rm", "--runtime", RUNTIME, "--runtime-config-path",
                config.toString(), TestContainerd.IMAGE, "g2", "sh", "-c", "dmesg | head -1");
        assertThat(r.out()).as(r.err()).contains("Starting gVisor");
        assertThat(r.code()).isZero();
    }

    @Test
    void aCommandThatDoesNotExistFailsCreateWithTheRuntimesReason() {
        TestContainerd.Result r = containerd.ctr(T, "run", "--rm", "--runtime", RUNTIME, TestContainerd.IMAGE, "n1",
                "/no/such/thing");
        assertThat(r.code()).isNotZero();
        assertThat(r.err()).contains("no such file or directory");
        containerd.ctr(T, "c", "rm", "n1");
    }

    @Test
    void detachedTaskExecMetricsPauseSurvivesARestartAndIsKilled() throws Exception {
        TestContainerd.Result run = containerd.ctr(T, "run", "-d", "--runtime", RUNTIME, TestContainerd.IMAGE, "d1",
                "sleep", "600");
        assertThat(run.code()).as(run.err()).isZero();
        assertThat(containerd.ctr(T, "task", "ls").out()).containsPattern("d1\\s+\\d+\\s+RUNNING");
        String pid = containerd.ctr(T, "task", "ls").out().lines().filter(l -> l.startsWith("d1"))
                .findFirst().orElseThrow().split("\\s+")[1];
        assertThat(containerd.ctr(T, "task", "ps", "d1").out()).contains(pid);

        TestContainerd.Result exec = containerd.ctr(T, "task", "exec", "--exec-id", "e1", "d1", "sh", "-c",
                "echo from exec; exit 5");
        assertThat(exec.out()).isEqualTo("from exec\n");
        assertThat(exec.code()).isEqualTo(5);
        TestContainerd.Result tty = containerd.ctrWithTty(T, "task", "exec", "-t", "--exec-id", "e2", "d1", "tty");
        assertThat(tty.out()).as(tty.err()).contains("/dev/pts/");

        TestContainerd.Result metrics = containerd.ctr(T, "task", "metrics", "d1");
        assertThat(metrics.out()).as(metrics.err()).contains("memory.usage_in_bytes").contains("pids.current");

        containerd.ctr(T, "task", "pause", "d1");
        assertThat(containerd.ctr(T, "task", "ls").out()).containsPattern("d1\\s+\\d+\\s+PAUSED");
        containerd.ctr(T, "task", "resume", "d1");

        containerd.restart();
        assertThat(containerd.ctr(T, "task", "ls").out()).containsPattern("d1\\s+" + pid + "\\s+RUNNING");
        TestContainerd.Result after = containerd.ctr(T, "task", "exec", "--exec-id", "e3", "d1", "echo", "again");
        assertThat(after.out()).as(after.err()).isEqualTo("again\n");

        assertThat(containerd.ctr(T, "task", "kill", "-s", "SIGKILL", "d1").code()).isZero();
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!containerd.ctr(T, "task", "ls").out().matches("(?s).*d1\\s+\\d+\\s+STOPPED.*")) {
            assertThat(System.nanoTime()).as("d1 stopped within 10 s").isLessThan(deadline);
            TestContainerd.sleep(100);
        }
        assertThat(containerd.ctr(T, "task", "rm", "d1").code()).isZero();
        assertThat(containerd.ctr(T, "c", "rm", "d1").code()).isZero();
        assertThat(ProcessHandle.of(Long.parseLong(pid))).isEmpty();
        assertThat(containerd.mounts()).noneMatch(m -> m.contains("d1"));
    }
}
