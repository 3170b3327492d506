package dev.kiln.isolation.shim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.isolation.ExitStatus;
import dev.kiln.isolation.LogReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** kiln-shim as a process: detaching, exit statuses, the json-file log and the files it keeps in its directory. */
@Timeout(60)
class ShimTest {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private final ShimFixture fixture = new ShimFixture();

    @TempDir
    Path dir;

    @AfterEach
    void cleanUp() {
        fixture.close();
    }

    @Test
    void logsStdoutAndStderrAsJsonFileLinesAndRecordsTheExit() throws Exception {
        Shim shim = fixture.launch(dir, ShimOptions.defaults(),
                "sh", "-c", "echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; printf 'out2\\tquote\" \\001'");

        ExitStatus status = shim.await(WAIT).orElseThrow();

        assertThat(status.exitCode()).isZero();
        assertThat(status.signal()).isZero();
        List<String> lines = Files.readAllLines(dir.resolve("log.json"));
        ObjectMapper json = new ObjectMapper();
        for (String line : lines) { // every line is one strict JSON object with exactly Docker's three fields
            JsonNode node = json.readTree(line);
            assertThat(node.properties()).extracting(java.util.Map.Entry::getKey).containsExactly("log", "stream", "time");
        }
        assertThat(LogReader.of(dir).all())
                .extracting(LogReader.LogRecord::stream, LogReader.LogRecord::text)
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("stdout", "out1\n"),
                        org.assertj.core.groups.Tuple.tuple("stderr", "err1\n"),
                        org.assertj.core.groups.Tuple.tuple("stdout", "out2\tquote\" \u0001"));
        assertThat(lines.get(2)).contains("\\u0001"); // a partial last line is flushed at EOF, control chars escaped
        assertThat(status.finishedAt()).isAfterOrEqualTo(shim.started().orElseThrow().startedAt());
        assertThat(Files.exists(dir.resolve("attach.sock"))).isFalse();
        assertThat(Files.readString(dir.resolve("exit.json"))).startsWith("{\"exitCode\":0,\"signal\":0,\"finishedAt\":\"");
    }

    @Test
    void exitCodeIsTheCommands() {
        assertThat(fixture.launch(dir, ShimOptions.defaults(), "sh", "-c", "exit 7").await(WAIT).orElseThrow().exitCode()).isEqualTo(7);
    }

    @Test
    void killedBySignalIs128PlusTheSignal() {
        ExitStatus status = fixture.launch(dir, ShimOptions.defaults(), "sh", "-c", "kill -9 $$").await(WAIT).orElseThrow();

        assertThat(status.exitCode()).isEqualTo(137);
        assertThat(status.signal()).isEqualTo(9);
    }

    @Test
    void aMissingCommandExits127WithTheReasonInTheLog() {
        ExitStatus status = fixture.launch(dir, ShimOptions.defaults(), "no-such-command-kiln").await(WAIT).orElseThrow();

        assertThat(status.exitCode()).isEqualTo(127);
        assertThat(LogReader.of(dir).all()).singleElement().satisfies(r -> {
            assertThat(r.stream()).isEqualTo("stderr");
            assertThat(r.text()).contains("no-such-command-kiln").contains("No such file or directory");
        });
    }

    @Test
    void detachesIntoItsOwnSessionAndTheCommandIntoItsOwnProcessGroup() throws Exception {
        Shim shim = fixture.launch(dir, ShimOptions.defaults(), "sleep", "5");

        // launch() returned while the command still runs
        assertThat(shim.alive()).isTrue();
        assertThat(shim.exitStatus()).isEmpty();
        assertThat(Shim.adopt(dir)).isEqualTo(shim);
        long self = ProcessHandle.current().pid();
        long shimPpid = ShimFixture.statField(shim.pid(), 4);
        assertThat(shimPpid).isNotEqualTo(self);
        assertThat(ProcessHandle.current().children().map(ProcessHandle::pid)).doesNotContain(shim.pid());
        assertThat(ShimFixture.statField(shim.pid(), 6)).isNotEqualTo(ShimFixture.statField(self, 6));
        assertThat(Files.readString(Path.of("/proc", Long.toString(shim.pid()), "status")))
                .doesNotContainPattern("(?m)^PPid:\\s+" + self + "$");
        long cmd = waitForStart(shim);
        assertThat(ShimFixture.statField(cmd, 4)).isEqualTo(shim.pid());
        assertThat(ShimFixture.statField(cmd, 5)).isEqualTo(cmd); // its own process group
        assertThat(Files.getPosixFilePermissions(dir.resolve("attach.sock")))
                .isEqualTo(PosixFilePermissions.fromString("rw-------"));
        // SIGTERM and SIGINT to the shim are ignored: they are meant for the sandbox
        dev.kiln.testing.Command.run("kill", "-TERM", Long.toString(shim.pid()));
        dev.kiln.testing.Command.run("kill", "-INT", Long.toString(shim.pid()));
        Thread.sleep(100);
        assertThat(shim.alive()).isTrue();

        ProcessHandle.of(cmd).orElseThrow().destroyForcibly();
        assertThat(shim.await(WAIT).orElseThrow().exitCode()).isEqualTo(137);
        for (int i = 0; i < 100 && shim.alive(); i++) Thread.sleep(20);
        assertThat(shim.alive()).isFalse();
    }

    @Test
    void theShimAndItsCommandHoldNoneOfTheLaunchingProcesssDescriptors() throws Exception {
        // what kilnd may hold when it launches a shim: a descriptor without O_CLOEXEC, and one the JDK opened
        int leaked = dev.kiln.LibcCall.open("/dev/null", dev.kiln.LibcCall.O_RDONLY);
        Path held = dir.resolve("held");
        Files.writeString(held, "x");
        try (java.io.FileInputStream javaFile = new java.io.FileInputStream(held.toFile())) {
            assertThat(leaked).isGreaterThan(2);
            Files.createDirectories(dir.resolve("s"));
            Shim shim = fixture.launch(dir.resolve("s"), ShimOptions.defaults(), "sleep", "30");
            long cmd = waitForStart(shim);
            // started.json names the command's process as soon as it is forked: it closes the shim's descriptors and
            // execs a moment later, so look once it runs sleep
            Path exe = Path.of("/proc", Long.toString(cmd), "exe");
            for (int i = 0; i < 250 && !Files.readSymbolicLink(exe).getFileName().toString().equals("sleep"); i++) {
                Thread.sleep(20);
            }
            assertThat(Files.readSymbolicLink(exe).getFileName().toString()).isEqualTo("sleep");
            for (long pid : List.of(shim.pid(), cmd)) {
                try (var fds = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
                    for (Path fd : fds.toList()) {
                        try {
                            assertThat(Files.readSymbolicLink(fd).toString()).doesNotEndWith("/held");
                        } catch (java.nio.file.NoSuchFileException closedMeanwhile) {
                            // the shim closes descriptors of its own as it goes on: one listed may be gone
                        }
                    }
                }
            }
            // the command: its stdio and nothing else
            try (var fds = Files.list(Path.of("/proc", Long.toString(cmd), "fd"))) {
                assertThat(fds.map(fd -> fd.getFileName().toString()).sorted().toList())
                        .containsExactly("0", "1", "2");
            }
        } finally {
            dev.kiln.LibcCall.close(leaked);
        }
    }

    @Test
    void aSetUpFailureIsOneLineFromTheShim() {
        Path missing = dir.resolve("missing");

        assertThatThrownBy(() -> fixture.launch(missing, ShimOptions.defaults(), "true"))
                .isInstanceOf(KilnException.class)
                .hasMessage("kiln-shim: " + missing + ": No such file or directory");
    }

    @Test
    void adoptingADirectoryWithoutAShimSaysSo() {
        assertThatThrownBy(() -> Shim.adopt(dir))
                .isInstanceOf(KilnException.class)
                .hasMessageContaining("shim.pid is missing");
    }

    @Test
    void writesToTheGivenLogFile() throws Exception {
        Path log = dir.resolve("elsewhere.log");
        Path shimDir = Files.createDirectory(dir.resolve("shim"));

        fixture.launch(shimDir, ShimOptions.defaults().withLog(log), "echo", "hi").await(WAIT).orElseThrow();

        assertThat(new LogReader(log).all()).extracting(LogReader.LogRecord::text).containsExactly("hi\n");
        assertThat(Files.exists(shimDir.resolve("log.json"))).isFalse();
    }

    @Test
    void recordsTheExitOnAFullDisk() {
        try (dev.kiln.testing.SmallDisk disk = dev.kiln.testing.SmallDisk.mount(dir.resolve("disk"), 1 << 20)) {
            Shim shim = fixture.launch(disk.dir(), ShimOptions.defaults(), "sh", "-c", "sleep 0.5; exit 3");
            disk.fill(0);

            ExitStatus status = shim.await(WAIT).orElseThrow();

            assertThat(status.exitCode()).as("the exit, recorded in the room the shim took at its start").isEqualTo(3);
            assertThat(disk.available()).isZero();
        }
    }

    @Test
    void aShimKilledBeforeTheExitIsGone() throws Exception {
        Shim shim = fixture.launch(dir, ShimOptions.defaults(), "sleep", "30");
        long command = waitForStart(shim);
        ProcessHandle.of(shim.pid()).orElseThrow().destroyForcibly();

        assertThatThrownBy(() -> shim.await(WAIT)).isInstanceOf(Shim.Gone.class)
                .hasMessageContaining("died without recording an exit status");
        ProcessHandle.of(command).ifPresent(ProcessHandle::destroyForcibly); // what kilnd's isolator would kill
    }

    @Test
    void aShimKilledWhileItsWatchPollsSlowlyIsStillGone() throws Exception {
        // a sandbox's exit watch polls less and less often (inotify wakes it for exit.json): after 3 s its pause is
        // at its longest, and the shim's death, which writes no file, must still end the watch
        Shim shim = fixture.launch(dir, ShimOptions.defaults(), "sleep", "30");
        long command = waitForStart(shim);
        var watch = java.util.concurrent.CompletableFuture.supplyAsync(() -> shim.await(WAIT));
        Thread.sleep(3_000);
        assertThat(watch).isNotDone();
        ProcessHandle.of(shim.pid()).orElseThrow().destroyForcibly();

        assertThatThrownBy(() -> watch.get(WAIT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS))
                .hasCauseInstanceOf(Shim.Gone.class);
        ProcessHandle.of(command).ifPresent(ProcessHandle::destroyForcibly);
    }

    static long waitForStart(Shim shim) throws InterruptedException {
        for (int i = 0; i < 500; i++) {
            var started = shim.started();
            if (started.isPresent()) return started.get().pid();
            Thread.sleep(10);
        }
        throw new AssertionError("the command did not start");
    }
}
