package dev.kiln.isolation.shim;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.isolation.LogReader;
import dev.kiln.testing.Command;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** kiln-shim in front of the real OCI runtimes, on a minimal busybox bundle made by {@code runc spec}. */
@Timeout(120)
class RuntimeShimTest {
    private final ShimFixture fixture = new ShimFixture();
    private final List<Runnable> cleanups = new ArrayList<>();

    @TempDir
    Path tmp;

    @BeforeEach
    void requireRoot() {
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "OCI runtimes need root here");
    }

    @AfterEach
    void cleanUp() {
        fixture.close();
        cleanups.forEach(Runnable::run);
    }

    @Test
    void runcUnderTheShimLogsTheContainersOutputAndExitCode() throws Exception {
        Path runc = Command.require("runc", "runc");

        Shim shim = underShim(runc, List.of());

        assertThat(shim.await(Duration.ofSeconds(60)).orElseThrow().exitCode()).isEqualTo(3);
        assertThat(LogReader.of(tmp.resolve("shim")).all())
                .extracting(LogReader.LogRecord::stream, LogReader.LogRecord::text)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("stdout", "hi\n"));
    }

    @Test
    void runscUnderTheShimLogsTheSandboxesOutputAndExitCode() throws Exception {
        Path runsc = Command.require("runsc", "runsc");

        Shim shim = underShim(runsc, List.of("--platform=ptrace", "--network=none"));

        assertThat(shim.await(Duration.ofSeconds(60)).orElseThrow().exitCode()).isEqualTo(3);
        assertThat(LogReader.of(tmp.resolve("shim")).all()).extracting(LogReader.LogRecord::text).contains("hi\n");
    }

    @Test
    void runscWithHeldOutputBootsBeforeTheClientAttachesWhichStillGetsEverything() throws Exception {
        Path runsc = Command.require("runsc", "runsc");

        Shim shim = underShim(runsc, List.of("--platform=ptrace", "--network=none"),
                ShimOptions.defaults().withWaitAttach(Duration.ofSeconds(30)).withHoldOutput());

        // kiln's gVisor start (OciIsolator): runsc boots its sandbox while kilnd is still on its way to attach
        Path state = tmp.resolve("state");
        for (int i = 0; i < 1000 && isEmpty(state); i++) {
            Thread.sleep(10);
        }
        assertThat(isEmpty(state)).as("runsc made its sandbox before any client attached").isFalse();
        assertThat(shim.started()).isPresent();
        Thread.sleep(1000); // `echo hi; exit 3` has long ended: its output and exit wait for the client
        assertThat(shim.exitStatus()).isEmpty();

        try (var client = shim.attach()) {
            ShimFixture.Received got = ShimFixture.drain(client);
            assertThat(got.stdout()).isEqualTo("hi\n");
            assertThat(got.exit()).isEqualTo("3");
        }
        assertThat(shim.await(Duration.ofSeconds(60)).orElseThrow().exitCode()).isEqualTo(3);
    }

    private static boolean isEmpty(Path dir) throws java.io.IOException {
        try (var entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        }
    }

    @Test
    void runcCreateAndStartLeaveNoRuncBesideTheContainerWhoseInitTheShimReaps() throws Exception {
        Path runc = Command.require("runc", "runc");
        Container c = container(runc, false, "echo up; exec sleep 300");
        Shim shim = fixture.launch(c.dir, ShimOptions.defaults().withContainer(c.id, c.bundle), c.runtime);

        long init = awaitStarted(shim);
        // the container's init is the shim's own child (reparented when runc create exited): no runc in between
        assertThat(ShimFixture.statField(init, 4)).as("parent of the container's init").isEqualTo(shim.pid());
        // started.json comes once runc start returned: the init's shell may not have exec'd sleep yet (CI-like load)
        Path comm = Path.of("/proc", Long.toString(init), "comm");
        for (long until = System.nanoTime() + Duration.ofSeconds(10).toNanos();
             !Files.readString(comm).strip().equals("sleep") && System.nanoTime() < until; ) {
            Thread.sleep(20);
        }
        assertThat(Files.readString(comm).strip()).isEqualTo("sleep");
        List<String> tree = ProcessHandle.of(shim.pid()).orElseThrow().descendants().map(p -> p.pid() + " "
                + comm(p.pid())).toList();
        assertThat(tree).as("processes under the shim of an idle container").containsExactly(init + " sleep");
        assertThat(Files.readString(c.state.resolve(c.id).resolve("state.json"))).contains("\"init_process_pid\":" + init);

        try (var client = shim.attach()) {
            client.signal(9); // the attach signal frame reaches the container's init
            assertThat(ShimFixture.drain(client).exit()).isEqualTo("137");
        }
        var exit = shim.await(Duration.ofSeconds(30)).orElseThrow();
        assertThat(exit.exitCode()).isEqualTo(137);
        assertThat(exit.signal()).isEqualTo(9);
        assertThat(LogReader.of(c.dir).all()).extracting(LogReader.LogRecord::text).containsExactly("up\n");
        assertThat(Files.list(c.state).toList()).as("runc's state once the shim recorded the exit: deleted").isEmpty();
    }

    @Test
    void runcWithATerminalHandsItsMasterToTheShim() throws Exception {
        Path runc = Command.require("runc", "runc");
        Container c = container(runc, true, "stty size; tty; read x; echo got $x; exit 5");
        Shim shim = fixture.launch(c.dir, ShimOptions.defaults().withTty(true).withStdin(true)
                .withWaitAttach(Duration.ofSeconds(30)).withContainer(c.id, c.bundle), c.runtime);
        // created at once, while the client is on its way; started only once it attached
        for (int i = 0; i < 500 && !Files.exists(c.dir.resolve("container.pid")); i++) {
            Thread.sleep(20);
        }
        Thread.sleep(200);
        assertThat(Command.run(c.runtime[0], c.runtime[1], c.runtime[2], "state", c.id)).contains("\"created\"");
        assertThat(shim.started()).as("started.json before the client attached").isEmpty();

        try (var client = shim.attach()) {
            client.resize(40, 100); // sent before runc made the terminal: applied when the shim receives it
            client.stdin("hello\n".getBytes());
            ShimFixture.Received got = ShimFixture.drain(client);
            assertThat(got.stdout()).contains("40 100\r\n", "/dev/pts/0\r\n", "got hello\r\n");
            assertThat(got.exit()).isEqualTo("5");
        }
        assertThat(shim.await(Duration.ofSeconds(30)).orElseThrow().exitCode()).isEqualTo(5);
        assertThat(c.dir.resolve("console.sock")).doesNotExist();
    }

    @Test
    void runcCreateThatFailsIsTheExitWithRuncsReasonInTheLog() throws Exception {
        Path runc = Command.require("runc", "runc");
        Container c = container(runc, false, "true");
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(c.bundle.resolve("config.json").toFile());
        ((ObjectNode) config.get("process")).putArray("args").add("no-such-command");
        json.writeValue(c.bundle.resolve("config.json").toFile(), config);

        Shim shim = fixture.launch(c.dir, ShimOptions.defaults().withContainer(c.id, c.bundle), c.runtime);

        assertThat(shim.await(Duration.ofSeconds(30)).orElseThrow().exitCode()).as("runc's exit, as `runc run`'s")
                .isEqualTo(1);
        assertThat(LogReader.of(c.dir).all()).anyMatch(r -> r.stream().equals("stderr")
                && r.text().contains("executable file not found"));
        assertThat(Files.list(c.state).toList()).isEmpty();
    }

    /** A container-mode shim's inputs: its directory, the runtime's argv (binary, --root), the bundle and the id. */
    private record Container(Path dir, String[] runtime, Path state, Path bundle, String id) {}

    private Container container(Path runc, boolean tty, String script) throws Exception {
        Path bundle = bundle(tty, script);
        Path state = Files.createDirectories(tmp.resolve("state"));
        String id = "kiln-shim-test-" + UUID.randomUUID().toString().substring(0, 8);
        cleanups.add(() -> {
            try {
                Command.run(runc.toString(), "--root", state.toString(), "delete", "-f", id);
            } catch (RuntimeException e) {
                // already gone: the shim deletes the container when its init was reaped
            }
        });
        return new Container(Files.createDirectories(tmp.resolve("shim")),
                new String[] {runc.toString(), "--root", state.toString()}, state, bundle, id);
    }

    private static String comm(long pid) {
        try {
            return Files.readString(Path.of("/proc", Long.toString(pid), "comm")).strip();
        } catch (java.io.IOException e) {
            return "(gone)";
        }
    }

    private static long awaitStarted(Shim shim) throws InterruptedException {
        for (int i = 0; i < 500 && shim.started().isEmpty(); i++) {
            Thread.sleep(20);
        }
        return shim.started().orElseThrow().pid();
    }

    /** {@code RUNTIME --root R [flags] run --bundle B ID} under a shim, for a bundle whose process prints and exits 3. */
    private Shim underShim(Path runtime, List<String> flags) throws Exception {
        return underShim(runtime, flags, ShimOptions.defaults());
    }

    private Shim underShim(Path runtime, List<String> flags, ShimOptions options) throws Exception {
        Path bundle = bundle(false, "echo hi; exit 3");
        Path state = Files.createDirectories(tmp.resolve("state"));
        String id = "kiln-shim-test-" + UUID.randomUUID().toString().substring(0, 8);
        List<String> command = new ArrayList<>(List.of(runtime.toString(), "--root", state.toString()));
        command.addAll(flags);
        command.addAll(List.of("run", "--bundle", bundle.toString(), id));
        cleanups.add(() -> {
            try {
                Command.run(runtime.toString(), "--root", state.toString(), "delete", "-f", id);
            } catch (RuntimeException e) {
                // already gone: `run` deletes the container when its process exits
            }
        });
        return fixture.launch(Files.createDirectories(tmp.resolve("shim")), options, command.toArray(String[]::new));
    }

    /** A busybox bundle made by {@code runc spec} whose process is {@code sh -c SCRIPT}. */
    private Path bundle(boolean tty, String script) throws Exception {
        Path bundle = Files.createDirectories(tmp.resolve("bundle"));
        Path bin = Files.createDirectories(bundle.resolve("rootfs/bin"));
        Path busybox = Path.of("/bin/busybox");
        Assumptions.assumeTrue(Files.isExecutable(busybox), "needs a static /bin/busybox (Debian busybox-static)");
        Files.copy(busybox, bin.resolve("busybox"));
        for (String applet : List.of("sh", "sleep", "stty", "tty")) {
            Files.createSymbolicLink(bin.resolve(applet), Path.of("busybox"));
        }
        Command.run("runc", "spec", "--bundle", bundle.toString());
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(bundle.resolve("config.json").toFile());
        ObjectNode process = (ObjectNode) config.get("process");
        process.put("terminal", tty);
        process.putArray("args").add("sh").add("-c").add(script);
        json.writeValue(bundle.resolve("config.json").toFile(), config);
        return bundle;
    }
}
