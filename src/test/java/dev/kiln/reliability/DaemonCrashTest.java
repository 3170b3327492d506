package dev.kiln.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testing.Command;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Files;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * kilnd dies with SIGKILL while sandboxes run; the sandboxes must not notice, and the next kilnd must adopt them
 * (ps, logs, exec, stop, rm all work) or, for those that exited meanwhile, record their exit and release their
 * mounts. kilnd runs as its own process; the sandboxes run under real runc and runsc.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DaemonCrashTest extends DaemonProcessTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String TICKER = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done";

    String image;
    List<String> rulesBefore;

    @BeforeEach
    void image() {
        Command.require("runsc", "runsc");
        image = busybox();
        rulesBefore = dev.kiln.testing.NetworkLeftovers.iptables();
    }



    @Test
    void runningSandboxesSurviveKill9AndAreAdoptedByTheNextDaemon() throws Exception {
        Map<String, String> sandboxes = new LinkedHashMap<>(); // name -> id
        sandboxes.put("ticker-1", kiln.ok("run", "-d", "--name", "ticker-1", image, "sh", "-c", TICKER).out().strip());
        sandboxes.put("ticker-2", kiln.ok("run", "-d", "--name", "ticker-2", image, "sh", "-c", TICKER).out().strip());
        sandboxes.put("sleeper", kiln.ok("run", "-d", "--name", "sleeper", "--isolation", "gvisor", image,
                "sleep", "300").out().strip());
        awaitTicks("ticker-1", 2);
        awaitTicks("ticker-2", 2);
        Map<String, Long> shims = new LinkedHashMap<>();
        for (String name : sandboxes.keySet()) {
            shims.put(name, inspect(name).path("State").path("Pid").asLong());
            assertThat(shims.get(name)).as(name + " shim pid").isPositive();
        }
        Map<String, String> logsBefore = new LinkedHashMap<>();
        for (String name : List.of("ticker-1", "ticker-2")) {
            logsBefore.put(name, logs(name));
        }

        long daemonPid = kilnd.pid();
        kilnd.kill9();
        assertThat(ProcessHandle.of(daemonPid)).as("kilnd after SIGKILL").isEmpty();
        KilnCli.Result down = kiln.kiln("ps");
        assertThat(down.exitCode()).as("ps with the daemon down: " + down).isEqualTo(125);
        assertThat(down.errLines()).as("one line saying the daemon is down: " + down).hasSize(1);

        // from the outside: every shim and the workload under it still run
        for (var e : sandboxes.entrySet()) {
            ProcessHandle shim = ProcessHandle.of(shims.get(e.getKey())).orElseThrow(() ->
                    new AssertionError(e.getKey() + ": its shim died with the daemon"));
            assertThat(shim.isAlive()).isTrue();
            String expected = e.getKey().equals("sleeper") ? "runsc-sandbox" : "while true";
            assertThat(shim.descendants().map(Leftovers::cmdline).filter(c -> c.contains(expected)).toList())
                    .as(e.getKey() + ": a process '" + expected + "' under shim " + shim.pid()).isNotEmpty();
        }
        Thread.sleep(2000); // output written while no daemon runs

        kilnd.restart();
        KilnCli.Result ps = kiln.ok("ps", "--format", "json");
        Map<String, JsonNode> rows = rows(ps.out());
        assertThat(rows.keySet()).as("running after the restart").containsExactlyInAnyOrderElementsOf(sandboxes.keySet());
        rows.values().forEach(r -> assertThat(r.path("State").asText()).isEqualTo("running"));

        for (String name : List.of("ticker-1", "ticker-2")) {
            String after = logs(name);
            assertThat(after).as(name + ": the log from before the crash is kept").startsWith(logsBefore.get(name));
            int atRestart = ticks(after);
            assertThat(atRestart).as(name + ": lines written while kilnd was down").isGreaterThan(ticks(logsBefore.get(name)));
            awaitTicks(name, atRestart + 1);
        }
        for (String name : sandboxes.keySet()) {
            KilnCli.Result exec = kiln.process(Duration.ofSeconds(30), "exec", name, "echo", "alive-" + name);
            assertThat(exec.exitCode()).as(name + " exec: " + exec).isZero();
            assertThat(exec.out()).isEqualTo("alive-" + name + "\n");
            assertThat(kiln.kiln("exec", name, "sh", "-c", "exit 7").exitCode()).as(name + " exec's exit code")
                    .isEqualTo(7);
        }

        kiln.ok("stop", "-t", "1", "ticker-1", "ticker-2", "sleeper");
        for (JsonNode row : rows(kiln.ok("ps", "-a", "--format", "json").out()).values()) {
            assertThat(row.path("State").asText()).as(row.toString()).isEqualTo("exited");
        }
        kiln.ok("rm", "ticker-1", "ticker-2", "sleeper");
        // (the shims are among the processes assertNothingLeft looks for: their command lines name the root; a
        // shim's bare pid is no evidence, as the host's init may take a while to reap it and pids are reused)
        assertNothingLeft(sandboxes.values());
    }

    @Test
    void sandboxThatExitsWhileTheDaemonIsDownIsRecordedAfterRestart() throws Exception {
        String container = kiln.ok("run", "-d", "--name", "quitter", image,
                "sh", "-c", "echo before; sleep 3; echo done; exit 5").out().strip();
        String gvisor = kiln.ok("run", "-d", "--name", "gquitter", "--isolation", "gvisor", image,
                "sh", "-c", "sleep 3; exit 6").out().strip();
        long shim = inspect("quitter").path("State").path("Pid").asLong();
        long gshim = inspect("gquitter").path("State").path("Pid").asLong();
        kilnd.kill9();

        for (long pid : List.of(shim, gshim)) {
            ProcessHandle.of(pid).ifPresent(p -> p.onExit().orTimeout(20, TimeUnit.SECONDS).join());
        }
        assertThat(Files.exists(root.resolve("sandboxes").resolve(container.substring(0, 12)).resolve("main/exit.json")))
                .as("the shim recorded the exit without a daemon").isTrue();

        kilnd.restart();
        Map<String, JsonNode> rows = rows(kiln.ok("ps", "-a", "--format", "json").out());
        assertThat(rows.get("quitter").path("State").asText()).isEqualTo("exited");
        assertThat(rows.get("quitter").path("Status").asText()).startsWith("Exited (5)");
        assertThat(rows.get("gquitter").path("Status").asText()).startsWith("Exited (6)");
        assertThat(kiln.ok("ps", "-q").out()).as("nothing running").isBlank();
        JsonNode state = inspect("quitter").path("State");
        assertThat(state.path("Status").asText()).isEqualTo("exited");
        assertThat(state.path("Running").asBoolean()).isFalse();
        assertThat(state.path("ExitCode").asInt()).isEqualTo(5);
        assertThat(state.path("FinishedAt").asText()).isNotEqualTo("0001-01-01T00:00:00Z");
        assertThat(inspect("gquitter").path("State").path("ExitCode").asInt()).isEqualTo(6);
        for (String id : List.of(container, gvisor)) {
            assertThat(Leftovers.mountsUnder(root.resolve("sandboxes").resolve(id.substring(0, 12))))
                    .as("mounts of exited sandbox " + id).isEmpty();
        }
        assertThat(Leftovers.runtimeState(runRoot)).as("runtime state of exited sandboxes").isEmpty();
        assertThat(logs("quitter")).isEqualTo("before\ndone\n");

        kiln.ok("rm", "quitter", "gquitter");
        assertNothingLeft(List.of(container, gvisor));
    }

    @Test
    @org.junit.jupiter.api.Tag("slow")
    void aRunningVmIsReadoptedByTheNextDaemon() throws Exception {
        dev.kiln.testing.VmTests.require();
        KilnCli.Result run = kiln.process(Duration.ofSeconds(90), "run", "-d", "--name", "vm-ticker", "--isolation",
                "vm", image, "sh", "-c", TICKER);
        assertThat(run.exitCode()).as(run.toString()).isZero();
        String id = run.out().strip();
        awaitTicks("vm-ticker", 1);
        long shim = inspect("vm-ticker").path("State").path("Pid").asLong();
        List<String> vmm = ProcessHandle.of(shim).orElseThrow().descendants().map(Leftovers::cmdline)
                .filter(c -> c.contains("qemu-system")).toList();
        assertThat(vmm).as("the VMM under the shim").isNotEmpty();

        kilnd.kill9();
        Thread.sleep(1500); // the guest goes on writing with no daemon
        assertThat(ProcessHandle.of(shim)).as("the shim outlives kilnd").isPresent();
        kilnd.restart();

        assertThat(inspect("vm-ticker").path("State").path("Status").asText()).isEqualTo("running");
        KilnCli.Result exec = kiln.process(Duration.ofSeconds(60), "exec", "vm-ticker", "sh", "-c",
                "echo readopted; cat /etc/hostname");
        assertThat(exec.exitCode()).as(exec.toString()).isZero();
        assertThat(exec.out()).isEqualTo("readopted\n" + id.substring(0, 12) + "\n");
        int ticks = ticks(logs("vm-ticker"));
        awaitTicks("vm-ticker", ticks + 1);

        KilnCli.Result stop = kiln.process(Duration.ofSeconds(60), "stop", "-t", "20", "vm-ticker");
        assertThat(stop.exitCode()).as(stop.toString()).isZero();
        assertThat(inspect("vm-ticker").path("State").path("Status").asText()).isEqualTo("exited");
        kiln.ok("rm", "vm-ticker");
        assertNothingLeft(List.of(id));
    }

    // ---- helpers ----

    private void assertNothingLeft(java.util.Collection<String> ids) {
        assertThat(kiln.ok("ps", "-a", "-q").out()).as("rows left").isBlank();
        assertThat(Leftovers.mountsUnder(root)).as("mounts under " + root).isEmpty();
        assertThat(Leftovers.runtimeState(runRoot)).as("runc/runsc state").isEmpty();
        assertThat(Leftovers.sandboxDirs(root)).as("sandbox directories").isEmpty();
        for (String id : ids) {
            assertThat(Leftovers.cgroupDirs(id)).as("cgroups of " + id).isEmpty();
            // the sandboxes were on the kiln bridge (the default): namespace, veth, rules and lease are gone too
            dev.kiln.testing.NetworkLeftovers.assertNothingLeft(root, true, id, null, rulesBefore);
        }
        assertThat(dev.kiln.testing.NetworkLeftovers.leases(root).stream().filter(f -> f.matches("[0-9.]+")).toList())
                .as("IPAM leases").isEmpty();
        assertThat(Leftovers.processesUnder(root).stream().filter(p -> p.pid() != kilnd.pid())
                .map(Leftovers::cmdline).toList())
                .as("processes still using " + root).isEmpty();
    }

    private JsonNode inspect(String name) throws Exception {
        JsonNode all = JSON.readTree(kiln.ok("inspect", name).out());
        return all.isArray() ? all.get(0) : all;
    }

    private static Map<String, JsonNode> rows(String jsonLines) throws Exception {
        Map<String, JsonNode> rows = new LinkedHashMap<>();
        for (String line : jsonLines.lines().filter(l -> !l.isBlank()).toList()) {
            JsonNode row = JSON.readTree(line);
            rows.put(row.path("Names").get(0).asText().replaceFirst("^/", ""), row);
        }
        return rows;
    }

    private String logs(String name) {
        KilnCli.Result r = kiln.process(Duration.ofSeconds(30), "logs", name);
        assertThat(r.exitCode()).as("logs " + name + ": " + r).isZero();
        return r.out();
    }

    private static int ticks(String log) {
        return (int) log.lines().filter(l -> l.startsWith("tick ")).count();
    }

    private void awaitTicks(String name, int atLeast) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        String log = "";
        while (System.nanoTime() < deadline) {
            log = logs(name);
            if (ticks(log) >= atLeast) {
                return;
            }
            Thread.sleep(300);
        }
        throw new AssertionError(name + ": fewer than " + atLeast + " ticks within 15 s: " + log);
    }
}
