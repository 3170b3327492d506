package dev.kiln.isolation.shim;

import static org.assertj.core.api.Assertions.assertThat;

import dev.kiln.isolation.AttachConnection;
import dev.kiln.isolation.ExitStatus;
import dev.kiln.isolation.LogReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The attach protocol against a real kiln-shim: output frames, exit frame, stdin, tty, resize, signals. */
@Timeout(60)
class AttachTest {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final ShimOptions WAIT_FOR_CLIENT = ShimOptions.defaults().withWaitAttach(Duration.ofSeconds(20));
    private final ShimFixture fixture = new ShimFixture();

    @TempDir
    Path dir;

    @AfterEach
    void cleanUp() {
        fixture.close();
    }

    @Test
    void withWaitAttachTheFirstClientGetsTheEarliestOutput() throws Exception {
        Shim shim = fixture.launch(dir, WAIT_FOR_CLIENT, "sh", "-c", "echo early; echo also >&2; exit 4");
        Thread.sleep(200);
        assertThat(shim.started()).as("the command waits for a client").isEmpty();

        ShimFixture.Received received;
        try (AttachConnection client = shim.attach()) {
            received = ShimFixture.drain(client);
        }

        assertThat(received).isEqualTo(new ShimFixture.Received("early\n", "also\n", "4"));
        assertThat(shim.await(WAIT).orElseThrow().exitCode()).isEqualTo(4);
    }

    @Test
    void withHoldOutputTheCommandRunsAtOnceAndTheFirstClientStillGetsItsOutputAndExit() throws Exception {
        Path marker = dir.resolve("ran");
        Shim shim = fixture.launch(dir, WAIT_FOR_CLIENT.withHoldOutput(), "sh", "-c",
                "echo early; echo also >&2; : > " + marker + "; exit 4");
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!java.nio.file.Files.exists(marker) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertThat(marker).as("the command ran before any client attached").exists();
        Thread.sleep(200); // it has exited by now: the exit waits for the client as the output does
        assertThat(shim.exitStatus()).as("no exit recorded before the client came").isEmpty();

        ShimFixture.Received received;
        try (AttachConnection client = shim.attach()) {
            received = ShimFixture.drain(client);
        }

        assertThat(received).isEqualTo(new ShimFixture.Received("early\n", "also\n", "4"));
        assertThat(shim.await(WAIT).orElseThrow().exitCode()).isEqualTo(4);
    }

    @Test
    void withoutAClientHeldOutputIsLoggedAfterTheTimeout() {
        Shim shim = fixture.launch(dir, ShimOptions.defaults().withWaitAttach(Duration.ofSeconds(1)).withHoldOutput(),
                "echo", "late");

        assertThat(shim.await(WAIT).orElseThrow().exitCode()).isZero();
        assertThat(LogReader.of(dir).all()).extracting(LogReader.LogRecord::text).containsExactly("late\n");
    }

    @Test
    void withoutAClientWaitAttachStartsTheCommandAfterItsTimeout() {
        Shim shim = fixture.launch(dir, ShimOptions.defaults().withWaitAttach(Duration.ofSeconds(1)), "echo", "late");

        assertThat(shim.await(WAIT).orElseThrow().exitCode()).isZero();
        assertThat(LogReader.of(dir).all()).extracting(LogReader.LogRecord::text).containsExactly("late\n");
    }

    @Test
    void stdinReachesTheCommandAndCloseStdinEndsIt() throws Exception {
        Shim shim = fixture.launch(dir, WAIT_FOR_CLIENT.withStdin(true), "cat");

        try (AttachConnection client = shim.attach()) {
            client.stdin("hello\n".getBytes(StandardCharsets.UTF_8));
            AttachConnection.Frame echoed = client.read();
            assertThat(echoed.type()).isEqualTo(AttachConnection.Frame.STDOUT);
            assertThat(echoed.text()).isEqualTo("hello\n");
            client.stdin(new byte[100_000]); // more than one frame's payload, and more than a pipe holds
            client.closeStdin();
            ShimFixture.Received rest = ShimFixture.drain(client);
            assertThat(rest.stdout()).hasSize(100_000);
            assertThat(rest.exit()).isEqualTo("0");
        }
    }

    @Test
    void ttyGivesAPseudoTerminalThatTakesResizes() throws Exception {
        Shim shim = fixture.launch(dir, WAIT_FOR_CLIENT.withTty(true).withStdin(true),
                "sh", "-c", "read go; tty; stty size");

        ShimFixture.Received received;
        try (AttachConnection client = shim.attach()) {
            client.resize(40, 100);
            client.stdin("go\n".getBytes(StandardCharsets.UTF_8)); // frames are handled in order: resize first
            received = ShimFixture.drain(client);
        }

        assertThat(received.stdout()).containsPattern("/dev/pts/\\d+\r\n").contains("40 100\r\n");
        assertThat(received.stderr()).isEmpty();
        assertThat(received.exit()).isEqualTo("0");
    }

    @Test
    void closeStdinOnATtySendsEndOfFile() throws Exception {
        Shim shim = fixture.launch(dir, WAIT_FOR_CLIENT.withTty(true).withStdin(true), "cat");

        try (AttachConnection client = shim.attach()) {
            client.stdin("abc\n".getBytes(StandardCharsets.UTF_8));
            client.closeStdin();
            ShimFixture.Received received = ShimFixture.drain(client);
            assertThat(received.stdout()).contains("abc\r\n");
            assertThat(received.exit()).isEqualTo("0");
        }
    }

    @Test
    void aSignalFrameReachesTheCommand() throws Exception {
        Shim shim = fixture.launch(dir, ShimOptions.defaults(), "sleep", "100");
        ShimTest.waitForStart(shim);

        try (AttachConnection client = shim.attach()) {
            client.signal(15);
            assertThat(ShimFixture.drain(client).exit()).isEqualTo("143");
        }
        ExitStatus status = shim.await(WAIT).orElseThrow();
        assertThat(status.exitCode()).isEqualTo(143);
        assertThat(status.signal()).isEqualTo(15);
    }

    @Test
    void aClientThatStopsReadingIsDroppedAfterAStallWhileOthersGetEverything() throws Exception {
        int size = 6_000_000; // far beyond the 1 MiB the shim queues per client plus the socket's buffers
        Shim shim = fixture.launch(dir, WAIT_FOR_CLIENT, "sh", "-c",
                "head -c " + size + " /dev/zero | tr '\\0' x; echo; echo done");

        try (AttachConnection stalled = shim.attach(); AttachConnection reader = shim.attach()) {
            ShimFixture.Received received = ShimFixture.drain(reader);
            assertThat(received.stdout().length()).isEqualTo(size + "\ndone\n".length());
            assertThat(received.exit()).isEqualTo("0");
            assertThat(drainQuietly(stalled)).as("the stalled client was cut off").isLessThan(size);
        }
        assertThat(LogReader.of(dir).all().stream().mapToInt(r -> r.data().length).sum())
                .isEqualTo(size + "\ndone\n".length());
        List<LogReader.LogRecord> tail = LogReader.of(dir).tail(2);
        assertThat(tail.get(0).text()).as("a long line is logged in 16 KiB records").hasSize(size % 16384 + 1);
        assertThat(tail.get(0).text()).endsWith("x\n");
        assertThat(tail.get(1).text()).isEqualTo("done\n");
    }

    @Test
    void severalClientsEachGetTheOutput() throws Exception {
        Shim shim = fixture.launch(dir, WAIT_FOR_CLIENT.withStdin(true), "cat");

        try (AttachConnection first = shim.attach(); AttachConnection second = shim.attach()) {
            Thread.sleep(200); // let the shim accept both before there is output
            first.stdin("one\n".getBytes(StandardCharsets.UTF_8));
            second.stdin("two\n".getBytes(StandardCharsets.UTF_8));
            second.closeStdin();
            assertThat(ShimFixture.drain(first).stdout()).isEqualTo("one\ntwo\n");
            assertThat(ShimFixture.drain(second).stdout()).isEqualTo("one\ntwo\n");
        }
    }

    @Test
    void attachesToADirectoryWhosePathIsTooLongForASocketAddress() throws Exception {
        Path deep = java.nio.file.Files.createDirectories(dir.resolve("d".repeat(60)).resolve("e".repeat(60)));
        assertThat(deep.resolve("attach.sock").toString().length()).isGreaterThan(108);
        Shim shim = fixture.launch(deep, WAIT_FOR_CLIENT, "echo", "deep");

        try (AttachConnection client = shim.attach()) {
            assertThat(ShimFixture.drain(client)).isEqualTo(new ShimFixture.Received("deep\n", "", "0"));
        }
    }

    private static long drainQuietly(AttachConnection connection) {
        long bytes = 0;
        try {
            for (AttachConnection.Frame f; (f = connection.read()) != null; ) bytes += f.payload().length;
        } catch (IOException e) {
            // a dropped client may see a reset
        }
        return bytes;
    }
}
