package dev.kiln.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testing.Command;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Checkpoints (issue 17, docs/checkpoint.md) through kiln's CLI and the Docker API against a kilnd of its own: a
 * counter kept in a shell variable (memory only) is checkpointed, the sandbox stops, and started from the checkpoint
 * it counts on from where it was, not from 1; ls/rm; the refusals; nothing left on the host.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class CheckpointTest extends DaemonProcessTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String COUNTER = "i=0; while true; do i=$((i+1)); echo n $i; sleep 0.2; done";

    String image;

    @BeforeEach
    void image() {
        image = busybox();
    }

    @Test
    void aGvisorSandboxCountsOnAfterItsCheckpointIsRestored() throws Exception {
        Command.require("runsc", "runsc");
        kiln.ok("run", "-d", "--name", "g", "--isolation", "gvisor", "--network", "none", image, "sh", "-c", COUNTER);
        continuesAcrossCheckpoints("g", Duration.ofSeconds(30), false);
        // this runsc cannot restart a sandbox after its checkpoint: refused, and the sandbox runs on
        KilnCli.Result kept = kiln.kiln("checkpoint", "create", "--leave-running", "g", "c2");
        assertThat(kept.exitCode()).isEqualTo(125);
        assertThat(kept.err().strip()).contains("--leave-running is not supported for gvisor").doesNotContain("\n");
        assertThat(inspect("g").path("State").path("Running").asBoolean()).isTrue();

        // the Docker API: create (Exit true), list, start?checkpoint=, delete
        RawHttp.Response exit = RawHttp.request(kilnd.socket(), "POST", "/v1.45/containers/g/checkpoints",
                "{\"CheckpointID\":\"api2\",\"Exit\":true}");
        assertThat(exit.status()).as(exit.body()).isEqualTo(201);
        assertThat(inspect("g").path("State").path("Running").asBoolean()).isFalse();
        RawHttp.Response list = RawHttp.request(kilnd.socket(), "GET", "/containers/g/checkpoints", null);
        assertThat(list.status()).isEqualTo(200);
        assertThat(list.json().findValuesAsText("Name")).containsExactly("c1", "api2");
        int before = last(logs("g"));
        RawHttp.Response start = RawHttp.request(kilnd.socket(), "POST", "/containers/g/start?checkpoint=api2", null);
        assertThat(start.status()).as(start.body()).isEqualTo(204);
        awaitCount("g", before + 3, Duration.ofSeconds(30));
        List<Integer> again = numbers(logs("g"));
        assertThat(again).as("counted on from the checkpoint again")
                .isEqualTo(IntStream.rangeClosed(1, again.size()).boxed().toList());
        RawHttp.Response missing = RawHttp.request(kilnd.socket(), "DELETE", "/containers/g/checkpoints/nope", null);
        assertThat(missing.status()).isEqualTo(404);
        RawHttp.Response gone = RawHttp.request(kilnd.socket(), "DELETE", "/containers/g/checkpoints/c1", null);
        assertThat(gone.status()).isEqualTo(204);
        assertThat(kiln.ok("checkpoint", "ls", "g").out().lines().toList())
                .containsExactly("CHECKPOINT NAME", "api2");

        // refusals, one line each
        KilnCli.Result badName = kiln.kiln("checkpoint", "create", "g", "../x");
        assertThat(badName.exitCode()).isEqualTo(125);
        assertThat(badName.err().strip()).contains("invalid checkpoint name").doesNotContain("\n");
        KilnCli.Result taken = kiln.kiln("checkpoint", "create", "g", "api2");
        assertThat(taken.exitCode()).isEqualTo(125);
        assertThat(taken.err()).contains("already exists");
        kiln.ok("stop", "-t", "1", "g");
        KilnCli.Result stopped = kiln.kiln("checkpoint", "create", "g", "c9");
        assertThat(stopped.exitCode()).isEqualTo(125);
        assertThat(stopped.err().strip()).contains("is not running").doesNotContain("\n");
        KilnCli.Result unknown = kiln.kiln("start", "--checkpoint", "nope", "g");
        assertThat(unknown.exitCode()).isEqualTo(125);
        assertThat(unknown.err().strip()).contains("checkpoint nope does not exist").doesNotContain("\n");
        assertThat(inspect("g").path("State").path("Running").asBoolean()).isFalse();

        kiln.ok("run", "-d", "--name", "c", image, "sleep", "300");
        KilnCli.Result runc = kiln.kiln("checkpoint", "create", "c", "c1");
        assertThat(runc.exitCode()).isEqualTo(125);
        assertThat(runc.err().strip()).contains("CRIU").doesNotContain("\n");
        assertThat(inspect("c").path("State").path("Running").asBoolean()).isTrue();

        kiln.ok("rm", "-f", "g", "c");
        assertNothingLeft();
    }

    @Test
    @Tag("slow")
    void aVmCountsOnAfterItsCheckpointIsRestored() throws Exception {
        dev.kiln.testing.VmTests.require();
        KilnCli.Result run = kiln.process(Duration.ofSeconds(120), "run", "-d", "--name", "v", "--isolation", "vm",
                "--network", "none", image, "sh", "-c", COUNTER);
        assertThat(run.exitCode()).as(run.toString()).isZero();
        KilnCli.Result wrote = kiln.process(Duration.ofSeconds(60), "exec", "v", "sh", "-c", "echo kept > /kept; sync");
        assertThat(wrote.exitCode()).as(wrote.toString()).isZero();
        continuesAcrossCheckpoints("v", Duration.ofSeconds(90), true);
        // the guest's kiln-init kept its state across the restore (exec works), and the disk came back with it
        KilnCli.Result exec = kiln.process(Duration.ofSeconds(60), "exec", "v", "cat", "/kept");
        assertThat(exec.out().strip()).as(exec.toString()).isEqualTo("kept");
        assertThat(exec.exitCode()).as(exec.toString()).isZero();
        kiln.process(Duration.ofSeconds(60), "rm", "-f", "v");
        assertNothingLeft();
    }

    /**
     * Checkpoint (the sandbox stops), restore, count on; then a checkpoint that leaves it running; ls and rm. The
     * log holds every number once, in order, from 1: the restored run went on from the checkpointed one.
     */
    private void continuesAcrossCheckpoints(String name, Duration wait, boolean leaveRunning) throws Exception {
        awaitCount(name, 5, wait);
        KilnCli.Result made = kiln.process(wait, "checkpoint", "create", name, "c1");
        assertThat(made.exitCode()).as(made.toString()).isZero();
        assertThat(made.out().strip()).isEqualTo("c1");
        JsonNode state = inspect(name).path("State");
        assertThat(state.path("Running").asBoolean()).as(state.toString()).isFalse();
        assertThat(state.path("ExitCode").asInt()).isZero();
        int before = last(logs(name));
        Thread.sleep(1000);
        assertThat(last(logs(name))).as("nothing counts while checkpointed").isEqualTo(before);

        KilnCli.Result started = kiln.process(wait, "start", "--checkpoint", "c1", name);
        assertThat(started.exitCode()).as(started.toString()).isZero();
        awaitCount(name, before + 5, wait);
        List<Integer> counted = numbers(logs(name));
        assertThat(counted).as("the counter went on from " + before + ", not from 1")
                .isEqualTo(IntStream.rangeClosed(1, counted.size()).boxed().toList());

        if (!leaveRunning) {
            assertThat(kiln.ok("checkpoint", "ls", name).out().lines().toList())
                    .containsExactly("CHECKPOINT NAME", "c1");
            return;
        }
        KilnCli.Result kept = kiln.process(wait, "checkpoint", "create", "--leave-running", name, "c2");
        assertThat(kept.exitCode()).as(kept.toString()).isZero();
        assertThat(inspect(name).path("State").path("Running").asBoolean()).isTrue();
        int now = last(logs(name));
        awaitCount(name, now + 3, wait);
        assertThat(kiln.ok("checkpoint", "ls", name).out().lines().toList())
                .containsExactly("CHECKPOINT NAME", "c1", "c2");
        kiln.ok("checkpoint", "rm", name, "c1");
        assertThat(kiln.ok("checkpoint", "ls", name).out().lines().toList())
                .containsExactly("CHECKPOINT NAME", "c2");
    }

    private void assertNothingLeft() {
        assertThat(kiln.ok("ps", "-a", "-q").out()).as("rows left").isBlank();
        assertThat(Leftovers.mountsUnder(root)).as("mounts under " + root).isEmpty();
        assertThat(Leftovers.runtimeState(runRoot)).as("runc/runsc state").isEmpty();
        assertThat(Leftovers.sandboxDirs(root)).as("sandbox directories (checkpoints with them)").isEmpty();
        assertThat(Leftovers.processesUnder(root).stream().filter(p -> p.pid() != kilnd.pid())
                .map(Leftovers::cmdline).toList()).as("processes still using " + root).isEmpty();
    }

    private JsonNode inspect(String name) throws Exception {
        JsonNode all = JSON.readTree(kiln.ok("inspect", name).out());
        return all.isArray() ? all.get(0) : all;
    }

    private String logs(String name) {
        KilnCli.Result r = kiln.process(Duration.ofSeconds(30), "logs", name);
        assertThat(r.exitCode()).as("logs " + name + ": " + r).isZero();
        return r.out();
    }

    private static List<Integer> numbers(String log) {
        return log.lines().filter(l -> l.startsWith("n ")).map(l -> Integer.parseInt(l.substring(2).strip()))
                .toList();
    }

    private static int last(String log) {
        List<Integer> n = numbers(log);
        return n.isEmpty() ? 0 : n.getLast();
    }

    private void awaitCount(String name, int atLeast, Duration wait) throws InterruptedException {
        long deadline = System.nanoTime() + wait.toNanos();
        String log = "";
        while (System.nanoTime() < deadline) {
            log = logs(name);
            if (last(log) >= atLeast) {
                return;
            }
            Thread.sleep(300);
        }
        KilnCli.Result all = kiln.process(Duration.ofSeconds(30), "logs", name);
        String state;
        try {
            state = inspect(name).path("State").toString();
        } catch (Exception e) {
            state = "(inspect: " + e.getMessage() + ")";
        }
        throw new AssertionError(name + ": did not count to " + atLeast + " within " + wait + " (state " + state
                + "; its stderr: " + all.err().strip() + "): " + log);
    }
}
