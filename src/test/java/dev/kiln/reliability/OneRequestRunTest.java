package dev.kiln.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code kiln run} is one request to kilnd ({@code POST /v1/sandboxes?start=1}: create and start, with
 * {@code &attach=1} the run's stream, issue 17) and keeps what its create-then-start did: a detached sandbox runs when
 * it returns, an attached run prints its output and exits with the sandbox's code, a command that cannot start is said
 * in one line with Docker's exit code, a --rm sandbox that could not start is gone, any other stays created.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class OneRequestRunTest extends DaemonProcessTest {

    String image;

    @BeforeEach
    void image() {
        image = busybox();
    }

    @Test
    void theCreateRouteWithStartAnswersWithASandboxThatRuns() {
        RawHttp.Response r = RawHttp.request(kilnd.socket(), "POST", "/v1/sandboxes?start=1",
                "{\"image\":\"" + image + "\",\"cmd\":[\"sleep\",\"600\"],\"network\":\"none\"}");
        assertThat(r.status()).as(r.body()).isEqualTo(201);
        String id = r.json().path("id").asText();
        assertThat(state(id).path("Status").asText()).isEqualTo("running");
        assertThat(state(id).path("Pid").asLong()).isPositive();
    }

    @Test
    void theCreateRouteWithStartAndAttachStreamsTheRunAndNamesTheSandbox() {
        RawHttp.Response r = RawHttp.request(kilnd.socket(), "POST", "/v1/sandboxes?start=1&attach=1",
                "{\"image\":\"" + image + "\",\"cmd\":[\"echo\",\"streamed\"],\"network\":\"none\"}");
        assertThat(r.status()).as(r.body()).isEqualTo(200);
        assertThat(r.headers()).containsIgnoringCase("X-Kiln-Sandbox: ");
        String id = r.headers().lines().filter(l -> l.toLowerCase().startsWith("x-kiln-sandbox:"))
                .findFirst().orElseThrow().substring("x-kiln-sandbox:".length()).strip();
        assertThat(r.body()).contains("streamed");
        assertThat(state(id).path("Status").asText()).isEqualTo("exited");
    }

    @Test
    void anAttachedRunPrintsItsOutputAndExitsWithTheSandboxsCode() {
        KilnCli.Result r = kiln.process(java.time.Duration.ofSeconds(60), "run", "--rm", "--network", "none", image,
                "sh", "-c", "echo out; echo err >&2; exit 3");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(3);
        assertThat(r.out().strip()).isEqualTo("out");
        assertThat(r.err()).contains("err");

        KilnCli.Result missing = kiln.kiln("run", "--rm", "--name", "gone-attached", "--network", "none", image,
                "no-such-cmd");
        assertThat(missing.exitCode()).as(missing.toString()).isEqualTo(127);
        assertThat(sandbox("gone-attached")).as("the --rm sandbox").isNull();
    }

    @Test
    void runDetachedStartsTheSandboxAndPrintsItsId() {
        String id = kiln.ok("run", "-d", "--name", "det", "--network", "none", image, "sleep", "600").out().strip();
        assertThat(id).matches("[0-9a-f]{64}");
        assertThat(state(id).path("Status").asText()).isEqualTo("running");
        KilnCli.Result exec = kiln.process(java.time.Duration.ofSeconds(60), "exec", "det", "echo", "in");
        assertThat(exec.out().strip()).as(exec.toString()).isEqualTo("in");
    }

    @Test
    void aCommandThatCannotStartIsOneLineAndLeavesACreatedSandboxOrWithRmNothing() {
        KilnCli.Result kept = kiln.kiln("run", "-d", "--name", "kept", "--network", "none", image, "no-such-cmd");
        assertThat(kept.exitCode()).as(kept.toString()).isEqualTo(127);
        assertThat(kept.errLines()).hasSize(1).first().asString().contains("no-such-cmd");
        JsonNode row = sandbox("kept");
        assertThat(row.path("State").asText()).isEqualTo("created");

        KilnCli.Result gone = kiln.kiln("run", "-d", "--rm", "--name", "gone", "--network", "none", image,
                "no-such-cmd");
        assertThat(gone.exitCode()).as(gone.toString()).isEqualTo(127);
        assertThat(sandbox("gone")).as("the --rm sandbox").isNull();
    }

    @Test
    void aCidfileIsStillWrittenWithTheId() throws Exception {
        Path cidfile = tmp.resolve("cid");
        String id = kiln.ok("run", "-d", "--cidfile", cidfile.toString(), "--network", "none", image, "sleep", "600")
                .out().strip();
        assertThat(Files.readString(cidfile).strip()).isEqualTo(id);
        assertThat(state(id).path("Status").asText()).isEqualTo("running");
    }

    private JsonNode state(String id) {
        RawHttp.Response r = RawHttp.request(kilnd.socket(), "GET", "/v1/sandboxes/" + id, null);
        assertThat(r.status()).as(r.body()).isEqualTo(200);
        return r.json().path("State");
    }

    /** The listing's row of the sandbox named {@code name}, or null. */
    private JsonNode sandbox(String name) {
        for (JsonNode row : RawHttp.request(kilnd.socket(), "GET", "/v1/sandboxes", null).json()) {
            if (row.path("Names").toString().contains(name)) {
                return row;
            }
        }
        return null;
    }
}
