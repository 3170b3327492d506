package dev.kiln.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What an idle container sandbox keeps on the host: its kiln-shim and the container's own processes, nothing of
 * runc (the shim ran {@code runc create} and {@code runc start}, which exited, and reaps the container's init
 * itself, as podman's conmon does). Through a kilnd crash and the next kilnd's stop. Real runc.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class IdleContainerTest extends DaemonProcessTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    String image;

    @BeforeEach
    void image() {
        image = busybox();
    }

    @Test
    void anIdleContainerIsItsShimAndItsOwnProcessesWhoseInitIsTheShimsChild() throws Exception {
        String id = kiln.ok("run", "-d", "--network", "none", image, "sh", "-c",
                "trap 'echo got TERM; exit 7' TERM; sleep 3171 & wait").out().strip();
        long shim = inspect(id).path("State").path("Pid").asLong();
        List<ProcessHandle> tree = awaitSleeper(shim);

        assertIdle(id, shim, tree);
        // the shim holds the container on its own: kill -9 of kilnd changes nothing
        kilnd.kill9();
        Thread.sleep(300);
        assertIdle(id, shim, ProcessHandle.of(shim).orElseThrow().descendants().toList());

        kilnd.restart();
        assertThat(kiln.ok("stop", "-t", "10", id).out().strip()).isEqualTo(id);
        JsonNode state = inspect(id).path("State");
        assertThat(state.path("ExitCode").asInt()).as("SIGTERM reached the container's pid 1, whose trap exits 7")
                .isEqualTo(7);
        KilnCli.Result logs = kiln.process(java.time.Duration.ofSeconds(30), "logs", id); // log bytes: stdout
        assertThat(logs.out()).as(logs.toString()).isEqualTo("got TERM\n");
        assertThat(Leftovers.runtimeState(runRoot)).as("runc's state after the exit").isEmpty();
        kiln.ok("rm", id);
    }

    /** The shim's tree is {@code sh} (the container's init, the shim's child) and its {@code sleep}: no runc. */
    private static void assertIdle(String id, long shim, List<ProcessHandle> tree) {
        assertThat(tree.stream().map(p -> comm(p.pid())).sorted().toList()).as("processes under kiln-shim " + shim)
                .containsExactly("sh", "sleep");
        ProcessHandle init = tree.stream().filter(p -> comm(p.pid()).equals("sh")).findFirst().orElseThrow();
        assertThat(init.parent().map(ProcessHandle::pid)).as("parent of the container's init").contains(shim);
        assertThat(ProcessHandle.allProcesses().filter(p -> comm(p.pid()).startsWith("runc"))
                .map(Leftovers::cmdline).filter(c -> c.contains(id)).toList())
                .as("runc processes of the sandbox").isEmpty();
    }

    private static List<ProcessHandle> awaitSleeper(long shim) throws InterruptedException {
        List<ProcessHandle> tree = List.of();
        for (int i = 0; i < 200 && tree.stream().noneMatch(p -> comm(p.pid()).equals("sleep")); i++) {
            Thread.sleep(25);
            tree = ProcessHandle.of(shim).orElseThrow().descendants().toList();
        }
        return tree;
    }

    private static String comm(long pid) {
        try {
            return Files.readString(Path.of("/proc", Long.toString(pid), "comm")).strip();
        } catch (IOException e) {
            return "(gone)";
        }
    }

    private JsonNode inspect(String id) throws IOException {
        return JSON.readTree(kiln.ok("inspect", id).out()).get(0);
    }
}
