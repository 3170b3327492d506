package dev.kiln.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testing.Command;
import dev.kiln.testing.NetworkLeftovers;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The shim of a running sandbox dies (kill -9), with kilnd up or down: kilnd must see it at once, kill what still
 * runs of the sandbox (recorded as containerd records a task whose shim died: 137), release everything it held
 * (mount, network namespace, veth, iptables rules, lease, cgroups, runtime state) and let rm succeed; rm -f must
 * succeed whatever state the shim is in. Real runc and runsc, on the kiln bridge with a published port.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DeadShimTest extends DaemonProcessTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    String image;
    List<String> rulesBefore;

    @BeforeEach
    void image() {
        image = busybox();
        rulesBefore = NetworkLeftovers.iptables();
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor"})
    void aKilledShimEndsItsSandboxAtOnceAndReleasesEverything(String isolation) throws Exception {
        if (isolation.equals("gvisor")) {
            Command.require("runsc", "runsc");
        }
        Running r = runSleeper(isolation);

        Instant killed = Instant.now();
        ProcessHandle.of(r.shim).orElseThrow().destroyForcibly();
        String status = awaitExited(r.id, Duration.ofSeconds(15));
        double seconds = Duration.between(killed, Instant.now()).toMillis() / 1000.0;

        assertThat(status).as("ps -a after kill -9 of the shim").startsWith("Exited (137)");
        JsonNode state = inspect(r.id).path("State");
        assertThat(state.path("ExitCode").asInt()).isEqualTo(137);
        // seen at once; recorded once everything is released (the network's teardown takes most of the time)
        assertThat(Duration.between(killed, Instant.parse(state.path("FinishedAt").asText())).toMillis())
                .as("ms from the kill to the end kilnd recorded").isLessThan(1000);
        System.out.println(isolation + ": ps showed the sandbox exited " + seconds + " s after kill -9 of its shim");
        // what an operator reads: one line, stamped, at WARN, naming the sandbox
        assertThat(Files.readAllLines(kilnd.log())).as("kilnd's log").anyMatch(l -> l.matches(
                "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z WARN  \\[sandbox " + r.id.substring(0, 12)
                        + "\\] the monitor of the sandbox \\(pid " + r.shim + "\\) died without recording an exit; "
                        + "its processes are killed \\(recorded as 137\\)"));
        assertWorkloadGone(r);
        assertReleased(r);

        kiln.ok("rm", r.id);
        assertThat(Leftovers.sandboxDirs(root)).isEmpty();
    }

    @Test
    @org.junit.jupiter.api.Tag("slow")
    void aKilledShimOfAVmEndsItAndReleasesEverything() throws Exception {
        dev.kiln.testing.VmTests.require();
        Running r = runSleeper("vm");

        ProcessHandle.of(r.shim).orElseThrow().destroyForcibly();

        assertThat(awaitExited(r.id, Duration.ofSeconds(20))).as("ps -a after kill -9 of the shim")
                .startsWith("Exited (137)");
        assertWorkloadGone(r); // the VMM and the relay
        assertReleased(r);
        kiln.ok("rm", r.id);
        assertThat(Leftovers.sandboxDirs(root)).isEmpty();
    }

    @Test
    void rmForceSucceedsAtOnceAfterTheShimWasKilled() throws Exception {
        Running r = runSleeper("container");
        ProcessHandle.of(r.shim).orElseThrow().destroyForcibly();

        KilnCli.Result rm = kiln.kiln("rm", "-f", r.id); // racing the watcher: either may end the run
        assertThat(rm.exitCode()).as(rm.toString()).isZero();
        assertWorkloadGone(r);
        assertReleased(r);
        assertThat(Leftovers.sandboxDirs(root)).isEmpty();
        assertThat(kiln.ok("ps", "-a", "-q").out()).isBlank();
    }

    @Test
    void rmForceSucceedsWhenTheShimIsStopped() throws Exception {
        Running r = runSleeper("container");
        Command.run("kill", "-STOP", Long.toString(r.shim)); // alive, but records nothing any more

        KilnCli.Result rm = kiln.kiln("rm", "-f", r.id);
        assertThat(rm.exitCode()).as(rm.toString()).isZero();
        assertThat(ProcessHandle.of(r.shim).filter(DeadShimTest::running)).as("the stopped shim").isEmpty();
        assertWorkloadGone(r);
        assertReleased(r);
        assertThat(Leftovers.sandboxDirs(root)).isEmpty();
    }

    @Test
    void aShimKilledWhileTheDaemonIsDownIsEndedAtRestart() throws Exception {
        Running r = runSleeper("container");
        kilnd.kill9();
        ProcessHandle.of(r.shim).orElseThrow().destroyForcibly();
        Thread.sleep(200);
        assertThat(r.workload).as("the sandbox runs on without its shim").anyMatch(DeadShimTest::running);

        kilnd.restart();
        assertThat(awaitExited(r.id, Duration.ofSeconds(1))).as("ps -a after the restart").startsWith("Exited (137)");
        assertWorkloadGone(r);
        assertReleased(r);
        kiln.ok("rm", r.id);
        assertThat(Leftovers.sandboxDirs(root)).isEmpty();
    }

    // ---- helpers ----

    /** A sandbox's id, its address, its shim's pid and the host processes under the shim (the workload). */
    record Running(String id, String ip, long shim, List<ProcessHandle> workload) {
    }

    private Running runSleeper(String isolation) throws Exception {
        KilnCli.Result run = kiln.process(Duration.ofSeconds(90), "run", "-d", "--isolation", isolation, "-p", "8080",
                image, "sleep", "3171");
        assertThat(run.exitCode()).as(run.toString()).isZero();
        String id = run.out().strip();
        JsonNode state = inspect(id);
        long shim = state.path("State").path("Pid").asLong();
        String ip = state.path("NetworkSettings").path("IPAddress").asText();
        assertThat(ip).as("address on the kiln bridge").isNotEmpty();
        List<ProcessHandle> workload = List.of();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        String marker = switch (isolation) {
            case "gvisor" -> "runsc-sandbox";
            case "vm" -> "qemu-system";
            default -> "sleep 3171";
        };
        while (System.nanoTime() < deadline && workload.stream().noneMatch(p -> Leftovers.cmdline(p).contains(marker))) {
            Thread.sleep(50);
            workload = ProcessHandle.of(shim).orElseThrow().descendants().toList();
        }
        assertThat(workload).as("the sandbox's processes under shim " + shim).isNotEmpty();
        assertThat(Path.of("/var/run/netns", "kiln-" + id.substring(0, 12))).as("its network namespace").exists();
        assertThat(NetworkLeftovers.iptables()).as("its port's rules").anyMatch(l -> l.contains(ip));
        if (!isolation.equals("vm")) { // a VM's limits are the VMM's, not a cgroup's
            assertThat(Leftovers.cgroupDirs(id)).as("its cgroups").isNotEmpty();
        }
        return new Running(id, ip, shim, workload);
    }

    /** Polls ps -a until the sandbox is not running; returns its STATUS column. */
    private String awaitExited(String id, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        String status;
        do {
            status = JSON.readTree(kiln.ok("ps", "-a", "--filter", "id=" + id, "--format", "json").out())
                    .path("Status").asText();
            if (status.startsWith("Exited")) {
                return status;
            }
            Thread.sleep(50);
        } while (System.nanoTime() < deadline);
        return status;
    }

    private static void assertWorkloadGone(Running r) {
        assertThat(r.workload.stream().filter(DeadShimTest::running).map(Leftovers::cmdline).toList())
                .as("processes of the sandbox still running").isEmpty();
    }

    /** Nothing of the sandbox is held on the host any more (its directory and row may stay until rm). */
    private void assertReleased(Running r) {
        assertThat(Leftovers.mountsUnder(root)).as("mounts under " + root).isEmpty();
        assertThat(Leftovers.runtimeState(runRoot)).as("runc/runsc state").isEmpty();
        assertThat(Leftovers.cgroupDirs(r.id)).as("cgroups of " + r.id).isEmpty();
        NetworkLeftovers.assertNothingLeft(root, true, r.id, r.ip, rulesBefore);
    }

    /** Alive and not a zombie (a zombie left to a host init that does not reap holds nothing). */
    private static boolean running(ProcessHandle p) {
        if (!p.isAlive()) {
            return false;
        }
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(p.pid()), "stat"));
            return stat.charAt(stat.lastIndexOf(')') + 2) != 'Z';
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }

    private JsonNode inspect(String id) throws Exception {
        JsonNode all = JSON.readTree(kiln.ok("inspect", id).out());
        return all.isArray() ? all.get(0) : all;
    }
}
