package dev.kiln.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.testing.Command;
import dev.kiln.testing.KilndProcess;
import dev.kiln.testing.LayerTar;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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
        DaemonProcessTest.stop(kiln, kilnd, root, runRoot);
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

    // ---- issue 11: input that must be refused, not coerced ----

    @Test
    void wrongJsonTypesAreA400NamingTheField() {
        Path socket = kilnd.socket();
        String config = "{\"Image\":\"" + image + "\",\"Cmd\":[\"true\"],";
        // Docker's create: before, Cmd:{} became [""] and the others were created (201)
        Map<String, String> docker = new LinkedHashMap<>();
        docker.put("{\"Image\":\"" + image + "\",\"Cmd\":{}}", "Cmd");
        docker.put(config + "\"Env\":[1,2]}", "Env[0]");
        docker.put(config + "\"HostConfig\":{\"Memory\":\"lots\"}}", "HostConfig.Memory");
        docker.put(config + "\"HostConfig\":[]}", "HostConfig");
        docker.put(config + "\"Tty\":\"true\"}", "Tty");
        docker.put(config + "\"HostConfig\":{\"Dns\":\"192.0.2.1\"}}", "HostConfig.Dns");
        docker.forEach((body, field) -> refused(RawHttp.request(socket, "POST", "/v1.43/containers/create", body),
                "POST /containers/create " + body, field));
        Map<String, String> v1 = new LinkedHashMap<>();
        String request = "{\"image\":\"" + image + "\",\"cmd\":[\"true\"],";
        v1.put(request + "\"memory\":\"5\"}", "memory");
        v1.put(request + "\"memory\":1.5}", "memory");
        v1.put(request + "\"tty\":\"true\"}", "tty");
        v1.put(request + "\"hostname\":5}", "hostname");
        v1.put(request + "\"env\":[null]}", "env[0]");
        v1.forEach((body, field) -> refused(RawHttp.request(socket, "POST", "/v1/sandboxes", body),
                "POST /v1/sandboxes " + body, field));
        refused(RawHttp.request(socket, "POST", "/networks/create", "{\"Name\":\"n1\",\"IPAM\":{\"Config\":{}}}"),
                "POST /networks/create", "IPAM.Config");
        refused(RawHttp.request(socket, "POST", "/v1/networks", "{\"name\":5}"), "POST /v1/networks", "name");
        assertThat(kiln.ok("network", "ls").out()).doesNotContain("n1");

        String id = kiln.ok("create", image, "true").out().strip();
        try {
            refused(RawHttp.request(socket, "POST", "/containers/" + id + "/exec", "{\"Cmd\":\"ls\"}"),
                    "POST /containers/ID/exec", "Cmd");
            refused(RawHttp.request(socket, "POST", "/containers/" + id + "/exec", "{\"Cmd\":[\"ls\"],\"Env\":[1]}"),
                    "POST /containers/ID/exec", "Env[0]");
            refused(RawHttp.request(socket, "POST", "/v1/sandboxes/" + id + "/exec", "{\"cmd\":[\"ls\"],\"tty\":1}"),
                    "POST /v1/sandboxes/ID/exec", "tty");
        } finally {
            kiln.ok("rm", "-f", id);
        }
    }

    @Test
    void valuesWrittenIntoTheSandboxsFilesAreRefusedAtCreate() {
        String longName = "h".repeat(300);
        // before: the newline put "nameserver 6.6.6.6" into resolv.conf; the hostnames were created, 300 characters
        // failed only in runc at start
        List<List<String>> bad = List.of(
                List.of("--dns-search", "corp.example\nnameserver 6.6.6.6"),
                List.of("--dns-option", "ndots:1\nnameserver 6.6.6.6"),
                List.of("--dns", "192.0.2.1\nnameserver 6.6.6.6"),
                List.of("--add-host", "db\n6.6.6.6 evil:192.0.2.7"),
                List.of("--hostname", "a\nb"),
                List.of("--hostname", "../../x"),
                List.of("--hostname", longName),
                List.of("-e", "A=1\u0000B=2"),
                List.of("-w", "/a\u0000b"),
                List.of("-w", "/" + "w".repeat(300)));
        for (List<String> flags : bad) {
            List<String> args = new java.util.ArrayList<>(List.of("create", "--network", "none"));
            args.addAll(flags);
            args.addAll(List.of(image, "true"));
            KilnCli.Result r = kiln.kiln(args.toArray(String[]::new));
            assertThat(r.exitCode()).as(flags.toString().replace("\n", "\\n") + ": " + r).isEqualTo(125);
            assertOneErrorLine(r);
        }
        Path socket = kilnd.socket();
        String config = "{\"Image\":\"" + image + "\",\"Cmd\":[\"true\"],";
        for (String body : List.of(
                config + "\"HostConfig\":{\"DnsSearch\":[\"x\\nnameserver 6.6.6.6\"]}}",
                config + "\"HostConfig\":{\"DnsOptions\":[\"ndots:1\\nnameserver 6.6.6.6\"]}}",
                config + "\"HostConfig\":{\"ExtraHosts\":[\"db\\n6.6.6.6 evil:192.0.2.7\"]}}",
                config + "\"Hostname\":\"a\\nb\"}",
                config + "\"Hostname\":\"../../x\"}",
                config + "\"Hostname\":\"" + longName + "\"}",
                config + "\"WorkingDir\":\"/a\\u0000b\"}",
                config + "\"Env\":[\"A=\\u0000\"]}")) {
            refused(RawHttp.request(socket, "POST", "/containers/create", body), "POST /containers/create " + body,
                    "");
        }
        refused(RawHttp.request(socket, "POST", "/v1/sandboxes", "{\"image\":\"" + image
                + "\",\"cmd\":[\"true\"],\"dnsSearch\":[\"x\\nnameserver 6.6.6.6\"]}"), "POST /v1/sandboxes", "");
    }

    @Test
    void aSandboxWithDnsSettingsAndAHostnameRunsWithThem() {
        KilnCli.Result r = kiln.process(Duration.ofSeconds(30), "run", "--rm", "--network", "none",
                "--hostname", "web.local", "--dns", "192.0.2.53", "--dns-search", "corp.example",
                "--dns-option", "ndots:2", "--add-host", "db.internal:192.0.2.7", image,
                "sh", "-c", "hostname; cat /etc/resolv.conf /etc/hosts");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).startsWith("web.local\nsearch corp.example\nnameserver 192.0.2.53\noptions ndots:2\n")
                .contains("192.0.2.7\tdb.internal\n").doesNotContain("6.6.6.6");
    }

    @Test
    void badImageReferencesAreA400AndTagNothing() {
        Path socket = kilnd.socket();
        // before: 201 and "ok:../x:latest" stored; the pulls answered 500
        RawHttp.Response tag = RawHttp.request(socket, "POST", "/images/" + image + "/tag?repo=ok&tag=../x", null);
        assertThat(tag.status()).as(tag.toString()).isEqualTo(400);
        for (String from : List.of("h:99999/x", "ok:../x", "ok&tag=../x")) {
            RawHttp.Response pull = RawHttp.request(socket, "POST", "/images/create?fromImage=" + from, null);
            assertThat(pull.status()).as(from + ": " + pull).isEqualTo(400);
            assertThat(pull.json().path("message").asText()).doesNotContain("\n").startsWith("invalid");
        }
        RawHttp.Response v1 = RawHttp.request(socket, "POST", "/v1/images/tag?source=" + image + "&target=ok:../y", null);
        assertThat(v1.status()).as(v1.toString()).isEqualTo(400);
        for (List<String> args : List.of(List.of("tag", image, "ok:../z"), List.of("tag", image, "h:99999/x:1"),
                List.of("pull", "h:99999/x"))) {
            KilnCli.Result r = kiln.kiln(args.toArray(String[]::new));
            assertThat(r.exitCode()).as(args + ": " + r).isEqualTo(125);
            assertOneErrorLine(r);
        }
        assertThat(kiln.ok("images").out()).doesNotContain("ok:").doesNotContain("h:99999");
    }

    @Test
    void importRefusesWhatIsNoTarAndStoresNothing() throws IOException {
        byte[] pattern = new byte[8192];
        for (int i = 1; i < pattern.length; i += 2) {
            pattern[i] = (byte) 0xff; // before: imported, and run unpacked a mode-000 directory named "?"
        }
        byte[] longName = new LayerTar().file("a".repeat(300), "x", 0644).tar(); // before: a 500 at run
        List<String> blobs = blobs();
        int n = 0;
        for (byte[] content : List.of(pattern, "hello\n".getBytes(StandardCharsets.UTF_8), longName)) {
            Path file = Files.write(tmp.resolve("not-a-rootfs-" + n), content);
            KilnCli.Result r = kiln.kiln("import", file.toString(), "junk:" + n++);
            assertThat(r.exitCode()).as(r.toString()).isEqualTo(125);
            assertOneErrorLine(r);
            assertThat(errorLine(r)).startsWith("kiln: cannot import: ");
        }
        RawHttp.Response api = RawHttp.request(kilnd.socket(), "POST", "/images/create?fromSrc=-&repo=junk&tag=api",
                pattern, "application/x-tar");
        assertThat(api.status()).as(api.toString()).isEqualTo(400);
        assertThat(kiln.ok("images").out()).doesNotContain("junk");
        assertThat(blobs()).as("blobs stored by a refused import").isEqualTo(blobs);
    }

    @Test
    void copyingAnArchiveOfNoTarOrOfOverlongNamesIsA400() {
        Path socket = kilnd.socket();
        String id = kiln.ok("create", image, "true").out().strip();
        try {
            byte[] pattern = new byte[8192];
            for (int i = 1; i < pattern.length; i += 2) {
                pattern[i] = (byte) 0xff; // before: 200, and a mode-000 directory "?" appeared
            }
            byte[] longName = new LayerTar().file("a".repeat(300), "x", 0644).tar(); // before: 500
            byte[] longPath = new LayerTar().file(("d".repeat(200) + "/").repeat(21) + "f", "x", 0644).tar();
            for (byte[] body : List.of(pattern, "hello\n".getBytes(StandardCharsets.UTF_8), longName, longPath)) {
                RawHttp.Response r = RawHttp.request(socket, "PUT", "/containers/" + id + "/archive?path=/tmp",
                        body, "application/x-tar");
                assertThat(r.status()).as(r.toString()).isEqualTo(400);
                assertThat(r.json().path("message").asText()).doesNotContain("\n").isNotBlank();
            }
            RawHttp.Response question = RawHttp.request(socket, "HEAD", "/containers/" + id + "/archive?path=/tmp/%3F",
                    null);
            assertThat(question.status()).as("nothing was unpacked: " + question).isEqualTo(404);
            RawHttp.Response get = RawHttp.request(socket, "GET", "/containers/" + id + "/archive?path=/"
                    + "a".repeat(300), null);
            assertThat(get.status()).as(get.toString()).isEqualTo(400); // before: 500, ENAMETOOLONG
        } finally {
            kiln.ok("rm", "-f", id);
        }
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

    /** A 400 with Docker's one-line {"message": …}, naming {@code field} when given. */
    private static void refused(RawHttp.Response r, String what, String field) {
        assertThat(r.status()).as(what + " -> " + r).isEqualTo(400);
        String message = r.json().path("message").asText();
        assertThat(message).as(what).isNotBlank().doesNotContain("\n").doesNotContain("\u0000");
        if (!field.isEmpty()) {
            assertThat(message).as(what).contains(field + ":");
        }
    }

    private static List<String> blobs() throws IOException {
        Path dir = root.resolve("blobs/sha256");
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (var files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

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
