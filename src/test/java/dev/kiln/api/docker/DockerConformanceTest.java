package dev.kiln.api.docker;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What a Docker client library's own integration suite found kiln doing differently from dockerd (issue 15), each
 * checked as the client sees it: the docker CLI where it shows the difference, the raw API (chunks, status codes,
 * stream framing) where only a library would.
 */
class DockerConformanceTest {

    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;
    static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void start() throws Exception {
        fixture.start(work, "kiln-conf-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);
    }

    @AfterAll
    static void stop() {
        fixture.close();
    }

    @Test
    void swarmEndpointsAnswerAsADaemonOutsideASwarm() {
        for (String[] call : List.of(new String[]{"POST", "/v1.45/swarm/leave?force=1"},
                new String[]{"GET", "/v1.45/swarm"}, new String[]{"GET", "/services"},
                new String[]{"GET", "/v1.45/nodes"}, new String[]{"DELETE", "/v1.45/secrets/x"})) {
            Raw r = request(call[0], call[1], null);
            assertThat(r.status()).as(call[1]).isEqualTo(503);
            assertThat(r.body()).as(call[1]).isEqualTo("{\"message\":\"This node is not part of a swarm\"}");
        }
        DockerCli.Result leave = docker.run("swarm", "leave", "--force");
        assertThat(leave.exitCode()).isNotZero();
        assertThat(leave.err()).contains("This node is not part of a swarm");
    }

    @Test
    void killReturnsOnceTheContainerNoLongerRuns() throws IOException {
        for (int i = 0; i < 3; i++) {
            String id = docker.ok("run", "-d", image, "sleep", "60").strip();
            Raw kill = request("POST", "/v1.45/containers/" + id + "/kill", null);
            assertThat(kill.status()).isEqualTo(204);
            // right after: not running, and a plain remove (no force) works, as with dockerd
            Raw inspect = request("GET", "/v1.45/containers/" + id + "/json", null);
            assertThat(inspect.json().path("State").path("Running").asBoolean()).isFalse();
            assertThat(inspect.json().path("State").path("ExitCode").asInt()).isEqualTo(137);
            assertThat(request("DELETE", "/v1.45/containers/" + id, null).status()).isEqualTo(204);
        }
        String id = docker.ok("run", "-d", image, "sleep", "60").strip();
        docker.ok("kill", id);
        docker.ok("rm", id);
    }

    @Test
    void progressStreamsSendEachMessageWholeWithItsNewline() throws IOException {
        Path archive = work.resolve("whole.tar");
        docker.ok("save", "-o", archive.toString(), image);
        Raw load = request("POST", "/v1.45/images/load", Files.readAllBytes(archive), "application/x-tar", true);
        assertThat(load.status()).isEqualTo(200);
        assertWholeLines(load);
        assertThat(load.body()).contains("Loaded image: ");

        String repo = image.substring(0, image.lastIndexOf(':'));
        Raw pull = request("POST", "/v1.45/images/create?fromImage=" + repo + "&tag=latest", null, null, true);
        assertThat(pull.status()).isEqualTo(200);
        assertWholeLines(pull);
        assertThat(pull.body()).contains("Status: ");
    }

    private static void assertWholeLines(Raw r) throws IOException {
        assertThat(r.chunks()).as(r.headers()).isNotEmpty();
        for (String chunk : r.chunks()) {
            assertThat(chunk).as("a chunk is whole JSON lines").endsWith("\n");
            for (String line : chunk.split("\n")) {
                assertThat(JSON.readTree(line).isObject()).as(line).isTrue();
            }
        }
    }

    @Test
    void aBadLoadAnswers200WithTheErrorInTheStream() {
        Raw load = request("POST", "/v1.45/images/load", "not a tar at all".repeat(100).getBytes(),
                "application/x-tar");
        assertThat(load.status()).isEqualTo(200);
        assertThat(load.body()).contains("\"error\":").contains("\"errorDetail\":");
        DockerCli.Result cli = docker.runWithStdin("garbage", "load");
        assertThat(cli.exitCode()).isNotZero();
        assertThat(cli.err()).isNotBlank().doesNotContain("Exception");
    }

    @Test
    void execOfAMissingBinaryIs127InExecInspectAndTheStartsTtyDecidesFraming() throws Exception {
        String id = docker.ok("run", "-d", image, "sleep", "60").strip();
        try {
            DockerCli.Result missing = docker.run("exec", id, "no-such-binary");
            assertThat(missing.exitCode()).isEqualTo(127);
            assertThat(missing.out() + missing.err()).contains("executable file not found");

            String exec = request("POST", "/v1.45/containers/" + id + "/exec",
                    "{\"Cmd\":[\"no-such-binary\"],\"AttachStdout\":true}").json().path("Id").asText();
            Raw start = request("POST", "/v1.45/exec/" + exec + "/start", "{\"Detach\":false,\"Tty\":false}");
            assertThat(start.status()).isEqualTo(200);
            assertThat(start.body()).contains("executable file not found");
            JsonNode inspect = request("GET", "/v1.45/exec/" + exec + "/json", null).json();
            assertThat(inspect.path("Running").asBoolean()).isFalse();
            assertThat(inspect.path("ExitCode").asInt()).isEqualTo(127);

            // created without a TTY, started with Tty: the raw stream (no 8-byte frame headers)
            String raw = request("POST", "/v1.45/containers/" + id + "/exec",
                    "{\"Cmd\":[\"echo\",\"plain\"],\"AttachStdout\":true}").json().path("Id").asText();
            Raw rawStart = request("POST", "/v1.45/exec/" + raw + "/start", "{\"Tty\":true}");
            assertThat(rawStart.headers()).containsIgnoringCase("application/vnd.docker.raw-stream");
            assertThat(rawStart.body()).isEqualTo("plain\n");
            String framed = request("POST", "/v1.45/containers/" + id + "/exec",
                    "{\"Cmd\":[\"echo\",\"framed\"],\"AttachStdout\":true}").json().path("Id").asText();
            Raw framedStart = request("POST", "/v1.45/exec/" + framed + "/start", "{\"Tty\":false}");
            assertThat(framedStart.body()).isEqualTo("\u0001\u0000\u0000\u0000\u0000\u0000\u0000\u0007framed\n");
        } finally {
            docker.run("rm", "-f", id);
        }
    }

    @Test
    void attachWithLogsReplaysOutputAndStreamZeroEnds() throws Exception {
        String id = docker.ok("run", "-d", image, "sh", "-c", "echo one; echo two >&2; sleep 60").strip();
        try {
            awaitLogs(id, "two");
            Raw both = request("POST", "/v1.45/containers/" + id + "/attach?logs=1&stream=0&stdout=1&stderr=1",
                    null);
            assertThat(both.status()).isEqualTo(200);
            assertThat(both.body()).contains("\u0001\u0000\u0000\u0000\u0000\u0000\u0000\u0004one\n")
                    .contains("\u0002\u0000\u0000\u0000\u0000\u0000\u0000\u0004two\n");
            Raw outOnly = request("POST", "/v1.45/containers/" + id + "/attach?logs=1&stream=0&stdout=1", null);
            assertThat(outOnly.body()).contains("one").doesNotContain("two");
            Raw nothing = request("POST", "/v1.45/containers/" + id + "/attach?logs=0&stream=0&stdout=1", null);
            assertThat(nothing.status()).isEqualTo(200);
            assertThat(nothing.body()).isEmpty();
        } finally {
            docker.run("rm", "-f", id);
        }
    }

    @Test
    void detachKeysEndTheAttachAndTheContainerRunsOnWithStdinOpen() throws Exception {
        String id = docker.ok("run", "-d", "-i", image, "cat").strip();
        try {
            for (String[] keys : List.of(new String[]{"", "\u0010\u0011"}, new String[]{"ctrl-x,y", "\u0018y"})) {
                String query = keys[0].isEmpty() ? "" : "&detachKeys=" + keys[0];
                try (SocketChannel ch = hijack("/v1.45/containers/" + id
                        + "/attach?stream=1&stdin=1&stdout=1&stderr=1" + query)) {
                    // a lone first key is held back, then forwarded when the next byte is not the second
                    ch.write(ByteBuffer.wrap(("hi" + keys[1].charAt(0) + "!\n").getBytes(StandardCharsets.ISO_8859_1)));
                    String echoed = readUntil(ch, "!\n");
                    assertThat(echoed).endsWith("hi" + keys[1].charAt(0) + "!\n");
                    ch.write(ByteBuffer.wrap(keys[1].getBytes(StandardCharsets.ISO_8859_1)));
                    assertThat(readToEnd(ch, Duration.ofSeconds(10))).as("the attach ends").isTrue();
                }
                assertThat(docker.ok("inspect", "--format", "{{.State.Running}}", id).strip()).isEqualTo("true");
            }
            // stdin is still open: a new attach still echoes
            try (SocketChannel ch = hijack("/v1.45/containers/" + id + "/attach?stream=1&stdin=1&stdout=1")) {
                ch.write(ByteBuffer.wrap("again\n".getBytes(StandardCharsets.US_ASCII)));
                assertThat(readUntil(ch, "again\n")).endsWith("again\n");
            }
            assertThat(request("POST", "/v1.45/containers/" + id + "/attach?stream=1&detachKeys=ctrl-", null)
                    .status()).isEqualTo(400);
        } finally {
            docker.run("rm", "-f", id);
        }
    }

    @Test
    void infoCountsImagesByIdAndPruneSaysWhatItReclaimed() {
        String repo = image.substring(0, image.lastIndexOf(':'));
        docker.ok("tag", image, repo + ":second-tag");
        try {
            long distinct = docker.ok("images", "-q").lines().distinct().count();
            assertThat(docker.ok("images", "--format", "{{.ID}}").lines().count()).isGreaterThan(distinct);
            assertThat(docker.ok("info", "--format", "{{.Images}}").strip()).isEqualTo(Long.toString(distinct));
        } finally {
            docker.ok("rmi", repo + ":second-tag");
        }

        docker.ok("run", "--name", "wrote", image, "sh", "-c", "s=0123456789abcdef; for i in 1 2 3 4 5 6 7 8 9 10 "
                + "11 12 13 14 15 16; do s=$s$s; done; for i in 1 2 3 4 5 6; do echo -n $s; done > /big");
        String pruned = docker.ok("container", "prune", "-f");
        assertThat(pruned).contains("Total reclaimed space:");
        String size = pruned.substring(pruned.indexOf("Total reclaimed space:") + 22).strip();
        assertThat(size).as(pruned).endsWith("MB");
        assertThat(Double.parseDouble(size.replace("MB", ""))).isGreaterThanOrEqualTo(6.0);
    }

    // ---- raw HTTP over the socket, keeping the chunks ----

    record Raw(int status, String headers, String body, List<String> chunks) {
        JsonNode json() throws IOException {
            return JSON.readTree(body);
        }
    }

    static Raw request(String method, String path, String json) {
        return request(method, path, json == null ? null : json.getBytes(StandardCharsets.UTF_8), "application/json");
    }

    static Raw request(String method, String path, byte[] body, String contentType) {
        return request(method, path, body, contentType, false);
    }

    /**
     * With {@code keepAlive} the connection stays open as a client library's does (the server then chunks a
     * streamed body; with "Connection: close" it would not), and reading ends at the last chunk.
     */
    static Raw request(String method, String path, byte[] body, String contentType, boolean keepAlive) {
        return request(fixture.daemon.socket(), method, path, body, contentType, keepAlive);
    }

    static Raw request(Path socket, String method, String path, byte[] body, String contentType, boolean keepAlive) {
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            String head = method + " " + path + " HTTP/1.1\r\nHost: d\r\n"
                    + (keepAlive ? "" : "Connection: close\r\n")
                    + (body == null ? "" : "Content-Type: " + contentType + "\r\nContent-Length: " + body.length
                    + "\r\n") + "\r\n";
            ch.write(ByteBuffer.wrap(head.getBytes(StandardCharsets.US_ASCII)));
            if (body != null) {
                ByteBuffer b = ByteBuffer.wrap(body);
                while (b.hasRemaining()) {
                    ch.write(b);
                }
            }
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            ByteBuffer buf = ByteBuffer.allocate(65536);
            while (ch.read(buf) >= 0) {
                got.write(buf.array(), 0, buf.position());
                buf.clear();
                if (keepAlive && got.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n0\r\n\r\n")) {
                    break;
                }
            }
            String raw = got.toString(StandardCharsets.ISO_8859_1);
            int end = raw.indexOf("\r\n\r\n");
            String headers = raw.substring(0, end);
            String rest = raw.substring(end + 4);
            List<String> chunks = new ArrayList<>();
            String content = rest;
            if (headers.toLowerCase().contains("transfer-encoding: chunked")) {
                StringBuilder all = new StringBuilder();
                int i = 0;
                while (true) {
                    int eol = rest.indexOf("\r\n", i);
                    int size = Integer.parseInt(rest.substring(i, eol).split(";")[0].strip(), 16);
                    if (size == 0) {
                        break;
                    }
                    String chunk = rest.substring(eol + 2, eol + 2 + size);
                    chunks.add(new String(chunk.getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8));
                    all.append(chunk);
                    i = eol + 2 + size + 2;
                }
                content = all.toString();
            }
            return new Raw(Integer.parseInt(raw.substring(9, 12)), headers,
                    new String(content.getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8), chunks);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** A hijacked attach: the 101 read, the socket left for raw bytes both ways. */
    static SocketChannel hijack(String path) throws IOException {
        SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(fixture.daemon.socket()));
        String head = "POST " + path + " HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                + "Content-Length: 0\r\n\r\n";
        ch.write(ByteBuffer.wrap(head.getBytes(StandardCharsets.US_ASCII)));
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        ByteBuffer one = ByteBuffer.allocate(1);
        while (!got.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
            one.clear();
            if (ch.read(one) < 0) {
                throw new AssertionError("closed before the upgrade: " + got);
            }
            got.write(one.array(), 0, 1);
        }
        assertThat(got.toString(StandardCharsets.ISO_8859_1)).startsWith("HTTP/1.1 101");
        return ch;
    }

    /** Reads (stdout frames' payloads, or raw bytes) until {@code text} arrived; a blocking read, bounded by cat. */
    private static String readUntil(SocketChannel ch, String text) throws Exception {
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        ByteBuffer buf = ByteBuffer.allocate(4096);
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < deadline) {
            buf.clear();
            if (ch.read(buf) < 0) {
                break;
            }
            got.write(buf.array(), 0, buf.position());
            String s = got.toString(StandardCharsets.ISO_8859_1).replaceAll("[\\x00-\\x02]\\x00\\x00\\x00[\\s\\S]{4}",
                    "");
            if (s.endsWith(text)) {
                return s;
            }
        }
        throw new AssertionError("never read " + text + ": " + got.toString(StandardCharsets.ISO_8859_1));
    }

    /** True once the server closes the connection within {@code timeout}. */
    private static boolean readToEnd(SocketChannel ch, Duration timeout) throws Exception {
        Thread timer = Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(timeout.toMillis());
                ch.close(); // unblocks the read below
            } catch (InterruptedException | IOException e) {
                // read ended first
            }
        });
        try {
            ByteBuffer buf = ByteBuffer.allocate(4096);
            while (true) {
                buf.clear();
                if (ch.read(buf) < 0) {
                    return true;
                }
            }
        } catch (IOException e) {
            return false;
        } finally {
            timer.interrupt();
        }
    }

    private static void awaitLogs(String id, String text) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < deadline) {
            DockerCli.Result logs = docker.run("logs", id);
            if ((logs.out() + logs.err()).contains(text)) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError(id + " never logged " + text);
    }
}
