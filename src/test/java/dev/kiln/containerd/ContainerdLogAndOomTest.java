package dev.kiln.containerd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * containerd-shim-kiln-v2's stdio log URIs and OOM events under a real containerd 1.6, through {@code ctr}: a task
 * logged by a {@code binary://} logging program (containerd's binary logging driver: CONTAINER_ID and
 * CONTAINER_NAMESPACE in its environment, stdout on fd 3, stderr on fd 4, ready on fd 5), a task logged to a
 * {@code file://}, and a task that outgrows its memory limit: killed (137) with a TaskOOM on containerd's event
 * stream before its exit.
 */
@Timeout(300)
class ContainerdLogAndOomTest {

    private static final Duration T = Duration.ofSeconds(60);
    private static final String RUNTIME = "io.containerd.kiln.v2";
    private static TestContainerd containerd;

    @BeforeAll
    static void start() throws Exception {
        containerd = TestContainerd.start(Files.createTempDirectory("kl"), false, "");
    }

    @AfterAll
    static void stop() throws Exception {
        if (containerd == null) return;
        containerd.close();
        assertThat(containerd.shims()).as("shims left running").isEmpty();
    }

    @Test
    void binaryLogUriStartsTheLoggerWithTheProcesssOutputOnFds3And4() throws Exception {
        Path out = containerd.dir.resolve("logged.txt");
        Path logger = containerd.dir.resolve("logger.sh");
        // what a logging driver does: announce itself, signal ready on fd 5, copy fds 3 and 4 until EOF
        Files.writeString(logger, """
                #!/bin/sh
                PATH=/usr/bin:/bin
                echo "logger $CONTAINER_NAMESPACE/$CONTAINER_ID args $*" >> "$2"
                printf r >&5
                exec 5>&-
                sed -u 's/^/stdout: /' <&3 >> "$2" &
                sed -u 's/^/stderr: /' <&4 >> "$2" &
                wait
                echo "logger done" >> "$2"
                """);
        Files.setPosixFilePermissions(logger, PosixFilePermissions.fromString("rwx------"));
        TestContainerd.Result r = containerd.ctr(T, "run", "--rm", "--runtime", RUNTIME, "--log-uri",
                "binary://" + logger + "?file=" + out, TestContainerd.IMAGE, "b1",
                "sh", "-c", "echo to-out; echo to-err >&2; exit 2");
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!(Files.exists(out) && Files.readString(out).contains("logger done")) && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertThat(Files.readString(out)).contains("logger default/b1 args file " + out + "\n")
                .contains("stdout: to-out\n").contains("stderr: to-err\n").endsWith("logger done\n");
        assertThat(containerd.ctr(T, "c", "ls", "-q").out()).doesNotContain("b1");
    }

    @Test
    void fileLogUriAppendsTheProcesssOutput() throws Exception {
        Path out = containerd.dir.resolve("file-log.txt");
        Files.writeString(out, "before\n");
        TestContainerd.Result r = containerd.ctr(T, "run", "--rm", "--runtime", RUNTIME, "--log-uri",
                "file://" + out, TestContainerd.IMAGE, "f1", "sh", "-c", "echo to-out; echo to-err >&2");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Files.readAllLines(out)).containsExactlyInAnyOrder("before", "to-out", "to-err");
        assertThat(Files.readAllLines(out).getFirst()).isEqualTo("before");
    }

    @Test
    void aTaskOverItsMemoryLimitIsKilledWithATaskOomEventBeforeItsExit() throws Exception {
        Path events = containerd.dir.resolve("events.txt");
        Process watch = new ProcessBuilder("ctr", "--address", containerd.socket.toString(), "events")
                .redirectOutput(events.toFile()).redirectErrorStream(true).start();
        try {
            Thread.sleep(1000);   // subscribed
            TestContainerd.Result r = containerd.ctr(T, "run", "--rm", "--runtime", RUNTIME, "--memory-limit",
                    Long.toString(32L << 20), TestContainerd.IMAGE, "oom1", "sh", "-c", "busybox tail /dev/zero");
            assertThat(r.code()).as(r.err()).isEqualTo(137);
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (!Files.readString(events).contains("/tasks/delete") && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
        } finally {
            watch.destroy();
            watch.waitFor(5, TimeUnit.SECONDS);
        }
        List<String> lines = Files.readAllLines(events).stream().filter(l -> l.contains("oom1")).toList();
        int oom = indexOf(lines, "/tasks/oom");
        int exit = indexOf(lines, "/tasks/exit");
        assertThat(oom).as("a /tasks/oom event for oom1 in:\n" + String.join("\n", lines)).isNotNegative();
        assertThat(lines.get(oom)).contains("\"container_id\":\"oom1\"");
        assertThat(exit).as("its exit after it").isGreaterThan(oom);
        assertThat(lines.get(exit)).contains("\"exit_status\":137");
    }

    private static int indexOf(List<String> lines, String topic) {
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).contains(" " + topic + " ")) return i;
        }
        return -1;
    }
}
