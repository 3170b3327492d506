package dev.kiln.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The life-cycle commands of issue 15 through kiln's own CLI against a kilnd of its own process: pause/unpause,
 * update, kill, and restart policies across a kilnd restart and a simulated host reboot (kilnd and every sandbox
 * process killed, then kilnd started again).
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class LifecycleCliTest extends DaemonProcessTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    String image;

    @BeforeEach
    void image() {
        image = busybox();
    }

    @Test
    void pauseUnpauseUpdateAndKillThroughTheKilnCli() throws Exception {
        kiln.ok("run", "-d", "--name", "p", "--memory", "64m", image, "sleep", "600");
        assertThat(kiln.ok("pause", "p").out().strip()).isEqualTo("p");
        assertThat(inspect("p").path("State").path("Status").asText()).isEqualTo("paused");
        assertThat(inspect("p").path("State").path("Paused").asBoolean()).isTrue();
        assertThat(kiln.ok("ps").out()).contains("(Paused)");
        KilnCli.Result exec = kiln.kiln("exec", "p", "true");
        assertThat(exec.exitCode()).isEqualTo(125);
        assertThat(exec.err()).contains("is paused");
        kiln.ok("unpause", "p");
        assertThat(inspect("p").path("State").path("Status").asText()).isEqualTo("running");

        kiln.ok("update", "--memory", "128m", "--pids-limit", "30", "--restart", "unless-stopped", "p");
        JsonNode host = inspect("p").path("HostConfig");
        assertThat(host.path("Memory").asLong()).isEqualTo(128L << 20);
        assertThat(host.path("PidsLimit").asLong()).isEqualTo(30);
        assertThat(host.path("RestartPolicy").path("Name").asText()).isEqualTo("unless-stopped");
        KilnCli.Result none = kiln.kiln("update", "p");
        assertThat(none.exitCode()).isEqualTo(125);
        assertThat(none.err()).contains("one or more flags");

        Path tar = tmp.resolve("p.tar");
        kiln.ok("exec", "p", "sh", "-c", "echo mine > /mine");
        kiln.ok("export", "-o", tar.toString(), "p");
        assertThat(dev.kiln.testing.Command.run("tar", "-tf", tar.toString()).lines())
                .contains("./mine", "./bin/sh");

        // kill returns once it no longer runs: rm without -f right after works
        kiln.ok("kill", "p");
        assertThat(inspect("p").path("State").path("Running").asBoolean()).isFalse();
        kiln.ok("rm", "p");

        KilnCli.Result conflict = kiln.kiln("run", "--rm", "--restart", "always", image, "true");
        assertThat(conflict.exitCode()).isEqualTo(125);
        assertThat(conflict.err()).contains("Conflicting options: --restart and --rm");
        KilnCli.Result bad = kiln.kiln("create", "--restart", "sometimes", image, "true");
        assertThat(bad.exitCode()).isEqualTo(125);
        assertThat(bad.err()).contains("invalid restart policy \"sometimes\"");
    }

    @Test
    void restartPoliciesHoldAcrossKilndRestartsAndAHostReboot() throws Exception {
        kiln.ok("run", "-d", "--name", "always", "--restart", "always", image, "sleep", "600");
        kiln.ok("run", "-d", "--name", "unless", "--restart", "unless-stopped", image, "sleep", "600");
        kiln.ok("run", "-d", "--name", "stopped", "--restart", "unless-stopped", image, "sleep", "600");
        kiln.ok("run", "-d", "--name", "never", image, "sleep", "600");
        kiln.ok("stop", "-t", "1", "stopped");

        // a sandbox that exits while kilnd is down is restarted by the next kilnd
        kiln.ok("run", "-d", "--name", "quitter", "--restart", "on-failure", image, "sh", "-c", "sleep 2; exit 4");
        kilnd.kill9();
        Thread.sleep(3000);
        kilnd.restart();
        awaitState("quitter", "running", 1);

        // the host reboots: kilnd and every process of every sandbox die at once
        long[] monitors = {pid("always"), pid("unless"), pid("never"), pid("quitter")};
        kilnd.kill9();
        for (long monitor : monitors) {
            ProcessHandle.of(monitor).ifPresent(m -> {
                m.descendants().forEach(ProcessHandle::destroyForcibly);
                m.destroyForcibly();
            });
        }
        Thread.sleep(500);
        kilnd.restart();
        awaitState("always", "running", 1);
        awaitState("unless", "running", 1);
        Thread.sleep(1000);
        assertThat(inspect("stopped").path("State").path("Status").asText())
                .as("unless-stopped that the user stopped stays stopped").isEqualTo("exited");
        assertThat(inspect("never").path("State").path("Status").asText()).isEqualTo("exited");
        assertThat(inspect("never").path("RestartCount").asInt()).isZero();
        // and they really run: exec works in the restarted one
        KilnCli.Result exec = kiln.process(Duration.ofSeconds(30), "exec", "always", "echo", "back");
        assertThat(exec.out().strip()).as(exec.toString()).isEqualTo("back");

        // a stop by the user holds across kilnd's restart for unless-stopped; always starts with kilnd again
        kiln.ok("stop", "-t", "1", "always", "unless");
        kilnd.restart();
        awaitState("always", "running", 2);
        Thread.sleep(1000);
        assertThat(inspect("unless").path("State").path("Status").asText()).isEqualTo("exited");
        kiln.ok("rm", "-f", "always", "unless", "stopped", "never", "quitter");
    }

    /**
     * Sandboxes kilnd re-adopts after its own restart (SIGKILL, not a reboot: their processes ran on) stay under
     * their policy and their health check: an {@code always} one that keeps exiting keeps being restarted by the new
     * kilnd, and a health check runs again (inspect shows fresh results, taken after the restart).
     */
    @Test
    void policiesAndHealthChecksOfAdoptedSandboxesGoOnAfterKilndRestarts() throws Exception {
        kiln.ok("run", "-d", "--name", "flaky", "--restart", "always", image, "sh", "-c", "sleep 2; exit 1");
        kiln.ok("run", "-d", "--name", "checked", "--health-cmd", "cat /tmp/ok", "--health-interval", "300ms", image,
                "sh", "-c", "echo fine > /tmp/ok; sleep 600");
        awaitHealth("checked", "healthy", 0);
        awaitState("flaky", "running", 1);
        // an on-failure one whose restart is in its back-off when kilnd dies gets its retries from the next kilnd
        kiln.ok("run", "-d", "--name", "failing", "--restart", "on-failure:5", image, "sh", "-c", "exit 5");
        awaitState("failing", "restarting", 3); // its back-off: 100 ms doubling

        kilnd.kill9();
        long restartedAt = System.currentTimeMillis();
        kilnd.restart();
        int before = inspect("flaky").path("RestartCount").asInt();
        awaitState("flaky", "running", before + 2); // two more exits, each seen and acted on by the new kilnd
        awaitHealth("checked", "healthy", restartedAt);
        JsonNode health = inspect("checked").path("State").path("Health");
        assertThat(health.path("FailingStreak").asInt()).isZero();
        assertThat(kiln.ok("ps").out()).contains("(healthy)");
        awaitState("failing", "exited", 5);
        assertThat(inspect("failing").path("State").path("ExitCode").asInt()).isEqualTo(5);
        kiln.ok("rm", "-f", "flaky", "checked", "failing");
    }

    /** Waits for State.Health.Status {@code status} with a last result that started after {@code sinceMillis}. */
    private void awaitHealth(String name, String status, long sinceMillis) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        JsonNode last = null;
        while (System.nanoTime() < deadline) {
            last = inspect(name).path("State").path("Health");
            JsonNode log = last.path("Log");
            if (last.path("Status").asText().equals(status) && log.size() > 0 && java.time.Instant.parse(
                    log.get(log.size() - 1).path("Start").asText()).toEpochMilli() > sinceMillis) {
                return;
            }
            Thread.sleep(200);
        }
        throw new AssertionError(name + "'s health never " + status + " after " + sinceMillis + ": " + last);
    }

    private long pid(String name) throws Exception {
        return inspect(name).path("State").path("Pid").asLong();
    }

    private void awaitState(String name, String status, int restarts) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        JsonNode last = null;
        while (System.nanoTime() < deadline) {
            last = inspect(name);
            if (last.path("State").path("Status").asText().equals(status)
                    && last.path("RestartCount").asInt() >= restarts) {
                return;
            }
            Thread.sleep(200);
        }
        throw new AssertionError(name + " never " + status + " after " + restarts + " restarts: " + last);
    }

    private JsonNode inspect(String name) throws Exception {
        JsonNode all = JSON.readTree(kiln.ok("inspect", name).out());
        return all.isArray() ? all.get(0) : all;
    }
}
