package dev.kiln.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.testing.Command;
import dev.kiln.testing.KilndProcess;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Bad requests, from the CLI and raw on the socket, get a one-line answer with Docker's exit code (or a 4xx with
 * {@code {"message": …}}) and never hurt kilnd: one daemon (its own process) takes them all, and after each test it
 * still answers and holds nothing the bad request created. Its config points runsc at a path where there is none, so
 * the gvisor isolation is one whose runtime is missing.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class BadInputTest {

    @TempDir
    static Path tmp;
    static Path root;
    static Path runRoot;
    static KilndProcess kilnd;
    static KilnCli kiln;
    static String image;
    /** Where kilnd's config says runsc is, and it is not. */
    static final String MISSING_RUNSC = "/nonexistent/kiln-bad-input/runsc";

    @BeforeAll
    static void startDaemon() {
        Command.require("runc", "runc");
        root = tmp.resolve("root");
        runRoot = tmp.resolve("run");
        kilnd = KilndProcess.start(root, runRoot, "runtime-paths:\n  runsc: " + MISSING_RUNSC + "\n");
        kiln = new KilnCli(kilnd);
        image = BusyboxImage.importInto(kiln, tmp);
    }

    @AfterAll
    static void stopDaemon() {
        try {
            if (kiln != null) {
                kiln.close();
            }
        } finally {
            if (kilnd != null) {
                kilnd.close();
            }
            Leftovers.cleanUp(root, runRoot);
        }
    }

    /** After every bad input: the same daemon process answers ps, and no sandbox, mount or runtime state is left. */
    @AfterEach
    void daemonStillServes() {
        long pid = kilnd.pid();
        KilnCli.Result ps = kiln.kiln("ps", "-a", "-q");
        assertThat(ps.exitCode()).as("ps after a bad request: " + ps + "\nkilnd log: " + kilnd.log()).isZero();
        assertThat(ps.out()).as("sandboxes left by a bad request").isBlank();
        assertThat(kilnd.pid()).as("kilnd was restarted?").isEqualTo(pid);
        assertThat(Leftovers.mountsUnder(root)).as("mounts left").isEmpty();
        assertThat(Leftovers.sandboxDirs(root)).as("sandbox dirs left").isEmpty();
        assertThat(Leftovers.runtimeState(runRoot)).as("runtime state left").isEmpty();
    }

    @Test
    void unknownImageIsOneLineAnd125() {
        // a loopback registry that does not listen: the pull kiln tries must fail fast, offline
        KilnCli.Result r = kiln.kiln("run", "--rm", "127.0.0.1:9/no/such-image:1", "true");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(125);
        assertOneErrorLine(r);
        assertThat(errorLine(r)).contains("127.0.0.1:9");

        RawHttp.Response api = RawHttp.request(kilnd.socket(), "POST", "/v1/sandboxes",
                "{\"image\":\"no/such-image:1\",\"cmd\":[\"true\"]}");
        assertThat(api.status()).as(api.body()).isEqualTo(404);
        assertThat(api.json().path("message").asText()).contains("no such image");
    }

    @Test
    void badFlagValuesAreOneLineAnd125() {
        List<List<String>> bad = List.of(
                List.of("-m", "lots"),
                List.of("--memory", "1k"),
                List.of("--cpus", "-1"),
                List.of("--cpus", "many"),
                List.of("--isolation", "nope"),
                List.of("--runtime", "nope"),
                List.of("--name", "bad name!"),
                List.of("--pids-limit", "x"));
        for (List<String> flags : bad) {
            for (String command : List.of("run", "create")) {
                List<String> args = new java.util.ArrayList<>(List.of(command, "--rm"));
                args.addAll(flags);
                args.addAll(List.of(image, "true"));
                KilnCli.Result r = kiln.kiln(args.toArray(String[]::new));
                assertThat(r.exitCode()).as(String.join(" ", args) + ": " + r).isEqualTo(125);
                assertOneErrorLine(r);
            }
        }
    }

    @Test
    void missingCommandIs127() {
        for (String cmd : List.of("/no/such/binary", "no-such-command")) {
            KilnCli.Result r = kiln.kiln("run", "--rm", image, cmd);
            assertThat(r.exitCode()).as(cmd + ": " + r).isEqualTo(127);
            assertOneErrorLine(r);
            assertThat(errorLine(r)).contains(cmd);
        }
    }

    @Test
    void notExecutableIs126() {
        for (String cmd : List.of("/etc", BusyboxImage.NOT_EXECUTABLE)) {
            KilnCli.Result r = kiln.kiln("run", "--rm", image, cmd);
            assertThat(r.exitCode()).as(cmd + ": " + r).isEqualTo(126);
            assertOneErrorLine(r);
            assertThat(errorLine(r)).contains(cmd);
        }
    }

    @Test
    void failedStartWithoutRmLeavesACreatedSandboxThatRmRemoves() {
        // as Docker: the sandbox was created before its command was found missing, and stays until removed
        KilnCli.Result r = kiln.kiln("run", "--name", "never-ran", image, "/no/such/binary");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(127);
        assertThat(kiln.ok("ps", "-a", "--format", "json").out()).contains("never-ran").contains("\"created\"");
        kiln.ok("rm", "never-ran");
    }

    @Test
    void garbageOnTheSocketIsA4xxWithAMessage() {
        Path socket = kilnd.socket();
        for (String body : List.of("{bad", "", "[]", "null", "{\"image\": 5, \"memory\": \"lots\"}",
                "{\"image\": \"" + image + "\", \"cmd\": \"not a list\"}", "\u0000\u0001\u0002")) {
            RawHttp.Response r = RawHttp.request(socket, "POST", "/v1/sandboxes", body);
            assertThat(r.status()).as("POST /v1/sandboxes " + body + " -> " + r).isEqualTo(400);
            JsonNode message = r.json().path("message");
            assertThat(message.isTextual()).as(r.body()).isTrue();
            assertThat(message.asText()).doesNotContain("\n").isNotBlank();
        }
        RawHttp.Response unknown = RawHttp.request(socket, "POST", "/v1/no-such-endpoint", "{}");
        assertThat(unknown.status()).isEqualTo(404);
        assertThat(unknown.json().path("message").asText()).contains("no-such-endpoint");

        RawHttp.Response noSandbox = RawHttp.request(socket, "POST", "/v1/sandboxes/nope/start", null);
        assertThat(noSandbox.status()).isEqualTo(404);
        assertThat(noSandbox.json().has("message")).isTrue();

        RawHttp.Response badExec = RawHttp.request(socket, "POST", "/v1/execs/nope/start", "{bad");
        assertThat(badExec.status()).isEqualTo(404);

        // not even HTTP: the server answers 400 (or closes) and keeps serving
        RawHttp.Response notHttp = RawHttp.send(socket, "\u0016\u0003\u0001garbage\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
        assertThat(notHttp.status()).isBetween(400, 499);
    }

    /**
     * An isolation whose runtime binary is missing is refused with its reason, whichever way it is asked for (by
     * name, by its Docker runtime name, on the socket), before anything is created; the others still work.
     */
    @Test
    void missingRuntimeBinaryIsOneLineAnd125() {
        String reason = "the gvisor isolation needs runsc, which is not at " + MISSING_RUNSC
                + " (runtime-paths in kilnd's config file)";
        for (List<String> args : List.of(List.of("run", "--rm", "--isolation", "gvisor"),
                List.of("create", "--isolation", "gvisor"), List.of("run", "--rm", "--runtime", "runsc"))) {
            List<String> all = new java.util.ArrayList<>(args);
            all.addAll(List.of(image, "true"));
            KilnCli.Result r = kiln.kiln(all.toArray(String[]::new));
            assertThat(r.exitCode()).as(String.join(" ", all) + ": " + r).isEqualTo(125);
            assertOneErrorLine(r);
            assertThat(errorLine(r)).isEqualTo("kiln: " + reason);
        }
        RawHttp.Response api = RawHttp.request(kilnd.socket(), "POST", "/v1/sandboxes",
                "{\"image\":\"" + image + "\",\"isolation\":\"gvisor\",\"cmd\":[\"true\"]}");
        assertThat(api.status()).as(api.body()).isEqualTo(502);
        assertThat(api.json().path("message").asText()).isEqualTo(reason);

        KilnCli.Result container = kiln.kiln("run", "--rm", image, "true");
        assertThat(container.exitCode()).as("the container isolation still runs: " + container).isZero();
    }

    // ---- helpers ----

    private static void assertOneErrorLine(KilnCli.Result r) {
        List<String> kilnLines = r.errLines().stream().filter(l -> l.startsWith("kiln: ")).toList();
        assertThat(kilnLines).as("one 'kiln: ' error line in " + r).hasSize(1);
        assertThat(r.err()).as("no stack trace").doesNotContain("\tat ").doesNotContain("Exception");
        // Docker's informational "Unable to find image 'X' locally" may precede the error, nothing else
        assertThat(r.errLines().stream().filter(l -> !l.startsWith("kiln: ") && !l.startsWith("Unable to find image")))
                .as("other stderr lines in " + r).isEmpty();
        assertThat(r.out()).as("stdout of a failed command").isBlank();
    }

    private static String errorLine(KilnCli.Result r) {
        return r.errLines().stream().filter(l -> l.startsWith("kiln: ")).findFirst().orElseThrow();
    }
}
