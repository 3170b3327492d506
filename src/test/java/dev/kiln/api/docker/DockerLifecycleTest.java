package dev.kiln.api.docker;

import dev.kiln.api.docker.DockerConformanceTest.Raw;
import dev.kiln.testing.Command;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The container life-cycle beyond run/stop, through the real docker CLI (issue 15): pause/unpause, update, restart
 * policies, health checks, export; in each isolation where it differs.
 */
class DockerLifecycleTest {

    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;

    /** Prints a line every 0.2 s: its log stops growing while it is frozen. */
    static final String TICKER = "while true; do echo tick; sleep 0.2; done";

    @BeforeAll
    static void start() throws Exception {
        fixture.start(work, "kiln-life-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);
    }

    @AfterAll
    static void stop() {
        fixture.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"runc", "runsc"})
    void pauseFreezesEveryProcessAndUnpauseThawsThem(String runtime) throws Exception {
        if (runtime.equals("runsc")) {
            Command.require("runsc", "runsc");
        }
        String name = "paused-" + runtime;
        docker.ok("run", "-d", "--name", name, "--runtime", runtime, image, "sh", "-c", TICKER);
        try {
            awaitTicks(name, 3);
            assertThat(docker.ok("pause", name).strip()).isEqualTo(name);
            assertPaused(name);
            int frozen = ticks(name);
            Thread.sleep(1000);
            assertThat(ticks(name)).as("no output while paused").isEqualTo(frozen);

            DockerCli.Result exec = docker.run("exec", name, "true");
            assertThat(exec.exitCode()).isNotZero();
            assertThat(exec.err()).contains("is paused, unpause the container before exec");
            assertThat(docker.run("pause", name).err()).contains("is already paused");
            assertThat(docker.run("start", name).err()).contains("paused");

            docker.ok("unpause", name);
            assertThat(docker.ok("inspect", "--format", "{{.State.Status}} {{.State.Paused}}", name).strip())
                    .isEqualTo("running false");
            awaitTicks(name, frozen + 3);
            assertThat(docker.run("unpause", name).err()).contains("is not paused");

            // stop of a paused container works, as Docker's does
            docker.ok("pause", name);
            docker.ok("stop", "-t", "1", name);
            assertThat(docker.ok("inspect", "--format", "{{.State.Status}} {{.State.Paused}}", name).strip())
                    .isEqualTo("exited false");
        } finally {
            docker.run("rm", "-f", name);
        }
        // kill (and rm -f) of a paused container too
        docker.ok("run", "-d", "--name", name, "--runtime", runtime, image, "sleep", "60");
        docker.ok("pause", name);
        docker.ok("kill", name);
        assertThat(docker.ok("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name).strip())
                .isEqualTo("exited 137");
        docker.ok("start", name);
        docker.ok("pause", name);
        docker.ok("rm", "-f", name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"runc", "runsc"})
    void updateChangesTheLimitsOfARunningContainer(String runtime) throws Exception {
        if (runtime.equals("runsc")) {
            Command.require("runsc", "runsc");
        }
        String name = "updated-" + runtime;
        docker.ok("run", "-d", "--name", name, "--runtime", runtime, "--memory", "64m", "--pids-limit", "40", image,
                "sleep", "600");
        try {
            assertThat(docker.ok("update", "--memory", "96m", "--cpus", "0.5", "--pids-limit", "20", name).strip())
                    .isEqualTo(name);
            assertThat(docker.ok("inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} "
                    + "{{.HostConfig.PidsLimit}}", name).strip()).isEqualTo((96L << 20) + " 500000000 20");
            // the kernel enforces them: the sandbox's cgroups on the host
            String id = docker.ok("inspect", "--format", "{{.Id}}", name).strip();
            assertThat(hostCgroup("memory", id, "memory.limit_in_bytes")).isEqualTo(Long.toString(96L << 20));
            assertThat(hostCgroup("cpu", id, "cpu.cfs_quota_us")).isEqualTo("50000");
            assertThat(docker.ok("stats", "--no-stream", "--format", "{{.MemUsage}}", name)).contains("/ 96MiB");
            if (runtime.equals("runc")) {
                assertThat(hostCgroup("pids", id, "pids.max")).isEqualTo("20");
                // and the container sees its own new limit
                assertThat(docker.ok("exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").strip())
                        .isEqualTo(Long.toString(96L << 20));
            }
            DockerCli.Result tiny = docker.run("update", "--memory", "1m", name);
            assertThat(tiny.exitCode()).isNotZero();
            assertThat(tiny.err()).contains("Minimum memory limit allowed is 6MB");
            DockerCli.Result shares = docker.run("update", "--cpu-shares", "512", name);
            assertThat(shares.err()).contains("kiln does not support updating --cpu-shares");

            docker.ok("update", "--restart", "on-failure:2", name);
            assertThat(docker.ok("inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}:"
                    + "{{.HostConfig.RestartPolicy.MaximumRetryCount}}", name).strip()).isEqualTo("on-failure:2");
        } finally {
            docker.run("rm", "-f", name);
        }
    }

    @Test
    void aStoppedVmTakesNewLimitsAtItsNextBoot() {
        String id = docker.ok("create", "--runtime", "kiln-vm", "--memory", "256m", image, "true").strip();
        try {
            docker.ok("update", "--memory", "384m", "--cpus", "1", id);
            assertThat(docker.ok("inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}", id)
                    .strip()).isEqualTo((384L << 20) + " 1000000000");
        } finally {
            docker.run("rm", "-f", id);
        }
    }

    @Test
    void restartPoliciesStartExitedContainersAgainUntilStopped() throws Exception {
        String failing = docker.ok("run", "-d", "--restart", "on-failure:2", image, "sh", "-c", "echo run; exit 3")
                .strip();
        String always = docker.ok("run", "-d", "--restart", "always", image, "sh", "-c", "echo run; sleep 0.3")
                .strip();
        String none = docker.ok("run", "-d", image, "sh", "-c", "exit 3").strip();
        try {
            awaitInspect(failing, "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", "2 exited 3");
            Thread.sleep(1000);
            assertThat(docker.ok("inspect", "--format", "{{.RestartCount}}", failing).strip())
                    .as("on-failure:2 stops after two restarts").isEqualTo("2");
            assertThat(docker.ok("logs", failing).lines().filter(l -> l.equals("run")).count()).isEqualTo(3);
            assertThat(docker.ok("inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}:"
                    + "{{.HostConfig.RestartPolicy.MaximumRetryCount}}", failing).strip()).isEqualTo("on-failure:2");

            awaitRestarts(always, 3);
            docker.ok("stop", "-t", "1", always);
            Thread.sleep(300);
            String after = docker.ok("inspect", "--format", "{{.RestartCount}} {{.State.Status}}", always).strip();
            Thread.sleep(1500);
            assertThat(docker.ok("inspect", "--format", "{{.RestartCount}} {{.State.Status}}", always).strip())
                    .as("docker stop keeps it stopped").isEqualTo(after).endsWith("exited");
            docker.ok("start", always);
            awaitRestarts(always, Integer.parseInt(after.split(" ")[0]) + 1);
            docker.ok("stop", "-t", "1", always);
            String killed = docker.ok("run", "-d", "--restart", "always", image, "sleep", "600").strip();
            docker.ok("kill", killed);
            Thread.sleep(1000);
            assertThat(docker.ok("inspect", "--format", "{{.State.Status}} {{.RestartCount}}", killed).strip())
                    .as("nor does docker kill restart it").isEqualTo("exited 0");
            docker.ok("rm", killed);

            assertThat(docker.ok("inspect", "--format", "{{.RestartCount}}", none).strip()).isEqualTo("0");
            // the docker CLI refuses --rm with --restart itself; kilnd does too (an API client's create)
            Raw conflict = DockerConformanceTest.request(fixture.daemon.socket(), "POST", "/v1.45/containers/create",
                    ("{\"Image\":\"" + image + "\",\"HostConfig\":{\"AutoRemove\":true,\"RestartPolicy\":"
                    + "{\"Name\":\"always\"}}}").getBytes(), "application/json", false);
            assertThat(conflict.status()).isEqualTo(400);
            assertThat(conflict.body()).contains("Conflicting options: --restart and --rm");
            DockerCli.Result bad = docker.run("create", "--restart", "always:3", image, "true");
            assertThat(bad.exitCode()).isNotZero();
        } finally {
            docker.run("rm", "-f", failing, always, none);
        }
    }

    /** During a policy's back-off Docker shows {@code restarting} (inspect, ps, its status filter); a stop ends it. */
    @Test
    void aPendingRestartShowsAsRestarting() throws Exception {
        String id = docker.ok("run", "-d", "--restart", "always", image, "sh", "-c", "exit 3").strip();
        try {
            // the back-off doubles from 100 ms: within a few runs it is long enough to be seen
            awaitInspect(id, "{{.State.Status}} {{.State.Restarting}} {{.State.Running}} {{.State.ExitCode}}",
                    "restarting true true 3");
            String ps = docker.ok("ps", "--filter", "status=restarting", "--filter", "id=" + id, "--format",
                    "{{.State}} {{.Status}}").strip();
            if (!ps.isEmpty()) { // the restart may have come between the two reads: then it is running again
                assertThat(ps).startsWith("restarting Restarting (3) ");
            }
            docker.ok("stop", "-t", "1", id);
            assertThat(docker.ok("inspect", "--format", "{{.State.Status}} {{.State.Restarting}}", id).strip())
                    .isEqualTo("exited false");
        } finally {
            docker.run("rm", "-f", id);
        }
    }

    @Test
    void healthChecksRunAsExecsAndShowInInspectPsAndEvents() throws Exception {
        String since = Long.toString(System.currentTimeMillis() / 1000 - 1);
        String id = docker.ok("run", "-d", "--health-cmd", "cat /tmp/ok", "--health-interval", "300ms",
                "--health-retries", "2", image, "sh", "-c", "sleep 3; echo fine > /tmp/ok; sleep 600").strip();
        try {
            assertThat(docker.ok("inspect", "--format", "{{.State.Health.Status}}", id).strip()).isEqualTo("starting");
            assertThat(docker.ok("ps", "--filter", "id=" + id, "--format", "{{.Status}}").strip())
                    .endsWith("(health: starting)");
            awaitInspect(id, "{{.State.Health.Status}}", "unhealthy");
            assertThat(Integer.parseInt(docker.ok("inspect", "--format", "{{.State.Health.FailingStreak}}", id)
                    .strip())).isGreaterThanOrEqualTo(2);
            assertThat(docker.ok("inspect", "--format", "{{range .State.Health.Log}}{{.ExitCode}} {{end}}", id))
                    .contains("1");
            awaitInspect(id, "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "healthy 0");
            // the last result's output is the check's (how many came before depends on the machine's speed)
            assertThat(docker.ok("inspect", "--format", "{{range .State.Health.Log}}[{{.Output}}]{{end}}", id)
                    .strip()).endsWith("[fine\n]");
            assertThat(docker.ok("ps", "--filter", "id=" + id, "--format", "{{.Status}}").strip())
                    .endsWith("(healthy)");
            assertThat(docker.ok("inspect", "--format", "{{json .Config.Healthcheck.Test}}", id).strip())
                    .isEqualTo("[\"CMD-SHELL\",\"cat /tmp/ok\"]");
            String events = docker.ok("events", "--since", since, "--until",
                    Long.toString(System.currentTimeMillis() / 1000 + 1), "--filter", "container=" + id,
                    "--filter", "event=health_status", "--format", "{{.Action}}");
            assertThat(events.lines().toList()).containsSubsequence("health_status: unhealthy",
                    "health_status: healthy");
            // docker wait is about the process, not its health
            docker.ok("kill", "--signal", "TERM", id);
            docker.ok("stop", "-t", "1", id);
            assertThat(docker.ok("wait", id).strip()).isEqualTo("137");
        } finally {
            docker.run("rm", "-f", id);
        }

        String slow = docker.ok("run", "-d", "--health-cmd", "sleep 5", "--health-interval", "200ms",
                "--health-timeout", "300ms", "--health-retries", "1", image, "sleep", "600").strip();
        try {
            awaitInspect(slow, "{{.State.Health.Status}}", "unhealthy");
            assertThat(docker.ok("inspect", "--format", "{{(index .State.Health.Log 0).Output}}", slow))
                    .contains("Health check exceeded timeout");
        } finally {
            docker.run("rm", "-f", slow);
        }
        String none = docker.ok("run", "-d", "--no-healthcheck", image, "sleep", "600").strip();
        try {
            assertThat(docker.ok("inspect", "--format", "{{.State.Health}}", none).strip()).isEqualTo("<nil>");
        } finally {
            docker.run("rm", "-f", none);
        }
    }

    @Test
    void exportWritesTheRootFilesystemAsATar() throws Exception {
        String id = docker.ok("run", "-d", image, "sh", "-c", "echo written > /made-here; rm /bin/ls; sleep 600")
                .strip();
        try {
            awaitFile(id);
            Path tar = work.resolve("export.tar");
            docker.ok("export", "-o", tar.toString(), id);
            java.util.Map<String, String> entries = entries(tar);
            assertThat(entries).containsKey("made-here").containsKey("bin/sh").doesNotContainKey("bin/ls");
            assertThat(entries.get("made-here")).isEqualTo("written\n");
            assertThat(docker.ok("inspect", "--format", "{{.State.Status}}", id).strip())
                    .as("running again after the export").isEqualTo("running");
            docker.ok("stop", "-t", "1", id);
            docker.ok("export", "-o", tar.toString(), id);
            assertThat(entries(tar)).containsKey("made-here");
        } finally {
            docker.run("rm", "-f", id);
        }
        if (dev.kiln.testing.Command.which("runsc") != null) {
            String g = docker.ok("run", "-d", "--runtime", "runsc", image, "sleep", "600").strip();
            try {
                DockerCli.Result running = docker.run("export", "-o", work.resolve("g.tar").toString(), g);
                assertThat(running.exitCode()).isNotZero();
                assertThat(running.err()).contains("export is not supported for a running gvisor sandbox");
            } finally {
                docker.run("rm", "-f", g);
            }
        }
        // a vm that never booted exports its image's tree (VmCopyTest exports one whose guest wrote files)
        String vm = docker.ok("create", "--runtime", "kiln-vm", image, "true").strip();
        try {
            docker.ok("export", "-o", work.resolve("vm.tar").toString(), vm);
            assertThat(entries(work.resolve("vm.tar"))).containsKey("bin/sh").containsKey("etc/passwd");
        } finally {
            docker.run("rm", "-f", vm);
        }
    }

    private static void awaitFile(String id) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < deadline) {
            if (docker.run("exec", id, "cat", "/made-here").out().contains("written")) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("never wrote /made-here");
    }

    /** The tar's entries (names without a leading ./) and, for regular files, their text. */
    static java.util.Map<String, String> entries(Path tar) throws java.io.IOException {
        java.util.Map<String, String> out = new java.util.TreeMap<>();
        try (var in = new org.apache.commons.compress.archivers.tar.TarArchiveInputStream(
                java.nio.file.Files.newInputStream(tar))) {
            org.apache.commons.compress.archivers.tar.TarArchiveEntry e;
            while ((e = in.getNextEntry()) != null) {
                String name = e.getName().replaceFirst("^\\./", "").replaceFirst("/$", "");
                out.put(name, e.isFile() && e.getSize() < 4096 ? new String(in.readAllBytes()) : "");
            }
        }
        return out;
    }

    static void awaitRestarts(String id, int n) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (System.nanoTime() < deadline) {
            if (Integer.parseInt(docker.ok("inspect", "--format", "{{.RestartCount}}", id).strip()) >= n) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError(id + " restarted fewer than " + n + " times");
    }

    static void awaitInspect(String id, String format, String expected) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        String last = "";
        while (System.nanoTime() < deadline) {
            last = docker.ok("inspect", "--format", format, id).strip();
            if (last.equals(expected)) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError(id + ": " + format + " is \"" + last + "\", never \"" + expected + "\"");
    }

    /** The sandbox's runtime cgroup on the host: kilnd runs in this JVM, so below this process's own cgroup. */
    static String hostCgroup(String controller, String id, String file) throws java.io.IOException {
        for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/self/cgroup"))) {
            String[] f = line.split(":", 3);
            if (java.util.List.of(f[1].split(",")).contains(controller)) {
                Path dir = Path.of("/sys/fs/cgroup", f[1], f[2], "kiln", id, "runtime");
                return java.nio.file.Files.readString(dir.resolve(file)).strip();
            }
        }
        throw new AssertionError("no " + controller + " cgroup v1 hierarchy here");
    }

    @Tag("slow")
    @Test
    void aVmPausesThroughQmp() throws Exception {
        dev.kiln.testing.VmTests.require();
        String name = "paused-vm";
        docker.ok("run", "-d", "--name", name, "--runtime", "kiln-vm", image, "sh", "-c", TICKER);
        try {
            awaitTicks(name, 3);
            docker.ok("pause", name);
            assertPaused(name);
            int frozen = ticks(name);
            Thread.sleep(1500);
            assertThat(ticks(name)).as("a stopped VM prints nothing").isEqualTo(frozen);
            docker.ok("unpause", name);
            awaitTicks(name, frozen + 3);
            DockerCli.Result update = docker.run("update", "--memory", "300m", name);
            assertThat(update.exitCode()).isNotZero();
            assertThat(update.err()).contains("fixed at its boot");
            docker.ok("pause", name);
            docker.ok("stop", "-t", "2", name);
            assertThat(docker.ok("inspect", "--format", "{{.State.Status}}", name).strip()).isEqualTo("exited");
        } finally {
            docker.run("rm", "-f", name);
        }
    }

    private static void assertPaused(String name) {
        assertThat(docker.ok("inspect", "--format", "{{.State.Status}} {{.State.Running}} {{.State.Paused}}", name)
                .strip()).isEqualTo("paused true true");
        assertThat(docker.ok("ps", "--filter", "name=" + name, "--format", "{{.Status}}").strip())
                .startsWith("Up ").endsWith("(Paused)");
        assertThat(docker.ok("ps", "-q", "--filter", "status=paused", "--filter", "name=" + name).strip())
                .isNotEmpty();
        assertThat(Integer.parseInt(docker.ok("info", "--format", "{{.ContainersPaused}}").strip()))
                .isGreaterThanOrEqualTo(1);
    }

    static int ticks(String name) {
        return (int) docker.ok("logs", name).lines().filter(l -> l.equals("tick")).count();
    }

    static void awaitTicks(String name, int n) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            if (ticks(name) >= n) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError(name + " printed fewer than " + n + " ticks");
    }
}
