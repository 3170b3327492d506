package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testing.Command;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code State.OOMKilled} as Docker reports it: true when the kernel's OOM killer ended a sandbox that ran out of its
 * {@code -m} memory, false for a normal exit and for a SIGKILL from the user, which end with the same 137. Under
 * runc and runsc alike the host kernel kills the sandbox (under runsc it kills the Sentry, the whole sandbox, which
 * runsc reports as 137 too); kiln learns of it from the cgroup it keeps above the runtime's.
 */
class OomCliTest {

    @TempDir
    static Path root;
    static KilnRun kiln;
    static final String IMAGE = "kiln-test/busybox-oom:1";
    /** Builds a 64 MB shell variable: far past a 16 MiB limit. */
    static final String HOG = "x=$(busybox head -c 64000000 /dev/zero | busybox tr \"\\0\" a); echo survived";

    @BeforeAll
    static void image() throws Exception {
        Command.require("runc", "runc");
        kiln = new KilnRun(root);
        kiln.importBusybox(IMAGE, java.util.Map.of());
    }

    @AfterAll
    static void stop() {
        if (kiln != null) {
            kiln.ok("prune");
            kiln.close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor"})
    void memoryHogIsReportedOomKilled(String isolation) throws Exception {
        SandboxCliTest.requireRuntime(isolation);
        String name = "oomer-" + isolation;
        KilnRun.Result hog = kiln.kiln("run", "--name", name, "--isolation", isolation, "-m", "16m", IMAGE,
                "sh", "-c", HOG);
        assertThat(hog.exitCode()).as(hog.err()).isEqualTo(137);
        assertThat(hog.out()).doesNotContain("survived");
        assertThat(kiln.ok("wait", name).out().strip()).isEqualTo("137"); // the exit is recorded
        JsonNode state = state(name);
        assertThat(state.at("/OOMKilled").asBoolean()).as(state.toString()).isTrue();
        assertThat(state.at("/ExitCode").asInt()).isEqualTo(137);
        assertThat(state.at("/Status").asText()).isEqualTo("exited");

        String id = id(name);
        kiln.ok("rm", name);
        assertNoCgroups(id);
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor"})
    void normalExitAndUserKillAreNotOomKills(String isolation) throws Exception {
        SandboxCliTest.requireRuntime(isolation);
        String fine = "fine-" + isolation;
        KilnRun.Result ok = kiln.kiln("run", "--name", fine, "--isolation", isolation, "-m", "64m", IMAGE,
                "sh", "-c", "echo ok");
        assertThat(ok.exitCode()).as(ok.err()).isZero();
        assertThat(ok.out()).isEqualTo("ok\n");
        assertThat(kiln.ok("wait", fine).out().strip()).isEqualTo("0");
        JsonNode state = state(fine);
        assertThat(state.at("/OOMKilled").asBoolean()).as(state.toString()).isFalse();
        assertThat(state.at("/ExitCode").asInt()).isZero();

        String killed = "killed-" + isolation;
        kiln.ok("run", "-d", "--name", killed, "--isolation", isolation, "-m", "64m", IMAGE, "sh", "-c",
                "echo up; sleep 60");
        awaitLog(killed, "up");
        kiln.ok("kill", "-s", "KILL", killed);
        assertThat(kiln.ok("wait", killed).out().strip()).isEqualTo("137");
        state = state(killed);
        assertThat(state.at("/OOMKilled").asBoolean()).as(state.toString()).isFalse();
        assertThat(state.at("/ExitCode").asInt()).isEqualTo(137);

        // started again, a sandbox that exits normally stays OOMKilled=false
        kiln.ok("start", fine);
        assertThat(kiln.ok("wait", fine).out().strip()).isEqualTo("0");
        assertThat(state(fine).at("/OOMKilled").asBoolean()).isFalse();

        List<String> ids = List.of(id(fine), id(killed));
        kiln.ok("rm", fine, killed);
        for (String id : ids) {
            assertNoCgroups(id);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor"})
    void oomKilledIsPerRun(String isolation) throws Exception {
        SandboxCliTest.requireRuntime(isolation);
        // the same sandbox first runs out of memory, then (restarted) exits by a user's SIGKILL: the second run's
        // state must not inherit the first run's OOM. (The marker is not in /tmp: runsc mounts its own tmpfs there.)
        String name = "twice-" + isolation;
        kiln.ok("create", "--name", name, "--isolation", isolation, "-m", "16m", IMAGE, "sh", "-c",
                "if [ -e /ran ]; then echo second run; sleep 60; else busybox touch /ran; " + HOG + "; fi");
        kiln.ok("start", name);
        assertThat(kiln.ok("wait", name).out().strip()).isEqualTo("137");
        assertThat(state(name).at("/OOMKilled").asBoolean()).isTrue();

        kiln.ok("start", name);
        awaitLog(name, "second run");
        kiln.ok("kill", "-s", "KILL", name);
        assertThat(kiln.ok("wait", name).out().strip()).isEqualTo("137");
        assertThat(state(name).at("/OOMKilled").asBoolean()).isFalse();
        String id = id(name);
        kiln.ok("rm", name);
        assertNoCgroups(id);
    }

    private static void awaitLog(String name, String text) throws InterruptedException {
        for (int i = 0; i < 100; i++) {
            if (kiln.ok("logs", name).out().contains(text)) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError(name + " never logged " + text + ": " + kiln.ok("logs", name).out()
                + kiln.ok("inspect", name).out());
    }

    private static JsonNode state(String name) throws IOException {
        return new ObjectMapper().readTree(kiln.ok("inspect", name).out()).get(0).get("State");
    }

    private static String id(String name) throws IOException {
        return new ObjectMapper().readTree(kiln.ok("inspect", name).out()).get(0).get("Id").asText();
    }

    /** No directory {@code kiln/<id>} (nor below it) in any cgroup hierarchy, at its root or under this JVM's cgroup. */
    private static void assertNoCgroups(String id) throws IOException {
        Set<String> owns = new LinkedHashSet<>(List.of("/"));
        for (String line : Files.readAllLines(Path.of("/proc/self/cgroup"))) {
            owns.add(line.split(":", 3)[2]);
        }
        List<Path> left = new ArrayList<>();
        try (Stream<Path> hierarchies = Files.list(Path.of("/sys/fs/cgroup"))) {
            for (Path h : hierarchies.toList()) {
                for (String own : owns) {
                    Path dir = h.resolve(own.substring(1)).resolve("kiln").resolve(id);
                    if (Files.isDirectory(dir)) {
                        left.add(dir);
                    }
                }
            }
        }
        assertThat(left).as("cgroups of " + id).isEmpty();
    }
}
