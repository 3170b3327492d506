package dev.kiln.api.docker;

import dev.kiln.testing.Command;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The real {@code docker} CLI (API 1.50 client, negotiating down to kiln's 1.45) against an in-process kilnd: the
 * Docker Engine API face on the same socket and engine as kiln's own API. Images come from a real registry
 * ({@link dev.kiln.testing.TestRegistry}) through {@code docker pull}.
 */
class DockerCliTest {

    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;
    static DockerCli.Result pulled;

    @BeforeAll
    static void start() throws Exception {
        fixture.start(work, "kiln-docker-");
        docker = fixture.docker;
        image = fixture.image;
        pulled = docker.run("pull", image);
    }

    @AfterAll
    static void stop() {
        fixture.close();
    }

    @Test
    void versionAndInfoDescribeKiln() {
        String version = docker.ok("version", "--format", "{{.Server.Platform.Name}}|{{.Server.APIVersion}}|"
                + "{{.Server.MinAPIVersion}}|{{.Client.APIVersion}}");
        assertThat(version.strip()).startsWith("kiln ").endsWith("|1.45|1.24|1.45");

        String info = docker.ok("info", "--format", "{{.OperatingSystem}}|{{.DefaultRuntime}}|{{json .Runtimes}}");
        assertThat(info).startsWith("kiln ").contains("|runc|").contains("\"runc\"").contains("\"runsc\"")
                .contains("\"kiln-container\"").contains("\"kiln-gvisor\"");
        assertThat(docker.ok("info")).contains("Isolations: container, gvisor");
    }

    @Test
    void pullShowsDockerProgressAndImagesListIt() {
        assertThat(pulled.exitCode()).as(pulled.err()).isZero();
        assertThat(pulled.out()).contains("Pulling from").contains("Digest: sha256:")
                .containsAnyOf("Downloaded newer image for", "Image is up to date for");
        String repo = image.substring(0, image.lastIndexOf(':'));
        assertThat(docker.ok("images", "--format", "{{.Repository}}:{{.Tag}}").lines()).contains(image);
        assertThat(docker.ok("image", "inspect", "--format", "{{.Os}}/{{.Architecture}} {{index .RepoTags 0}}",
                image).strip()).isEqualTo("linux/amd64 " + image);

        docker.ok("tag", image, repo + ":copy");
        assertThat(docker.ok("images", "--format", "{{.Repository}}:{{.Tag}}")).contains(repo + ":copy");
        assertThat(docker.ok("rmi", repo + ":copy")).contains("Untagged: " + repo + ":copy");

        DockerCli.Result again = docker.run("pull", image);
        assertThat(again.out()).contains("Already exists").contains("Image is up to date for");
    }

    @Test
    void pushSendsTheImageToTheRegistryAndItPullsBack() {
        String repo = image.substring(0, image.indexOf('/')) + "/pushed/busybox";
        docker.ok("tag", image, repo + ":1");
        DockerCli.Result push = docker.run("push", repo + ":1");
        assertThat(push.exitCode()).as(push.err()).isZero();
        assertThat(push.out()).contains("1: digest: sha256:");
        docker.ok("rmi", repo + ":1");
        assertThat(docker.ok("images", "--format", "{{.Repository}}:{{.Tag}}").lines()).doesNotContain(repo + ":1");
        DockerCli.Result back = docker.run("pull", repo + ":1");
        assertThat(back.exitCode()).as(back.err()).isZero();
        assertThat(docker.ok("run", "--rm", repo + ":1", "echo", "round trip").strip()).isEqualTo("round trip");
        docker.ok("rmi", repo + ":1");
    }

    @org.junit.jupiter.api.Tag("slow")
    @ParameterizedTest
    @CsvSource({"--runtime,kiln-vm", "--isolation,vm"})
    void theVmIsolationThroughTheDockerCli(String flag, String value) {
        dev.kiln.testing.VmTests.require();
        DockerCli.Result r = docker.run("run", "--rm", flag, value, image, "sh", "-c", "uname -r; exit 3");
        assertThat(r.exitCode()).as(r.err()).isEqualTo(3);
        assertThat(r.out().strip()).as("the guest kernel, not the host's").isNotEqualTo(
                Command.run("uname", "-r").strip());
    }

    @Test
    void runPrintsOutputAndExitsWithTheContainersCode() {
        DockerCli.Result hi = docker.run("run", "--rm", image, "echo", "hi");
        assertThat(hi.exitCode()).as(hi.err()).isZero();
        assertThat(hi.out()).isEqualTo("hi\n");

        DockerCli.Result seven = docker.run("run", "--rm", image, "sh", "-c", "echo out; echo err >&2; exit 7");
        assertThat(seven.exitCode()).isEqualTo(7);
        assertThat(seven.out()).isEqualTo("out\n");
        assertThat(seven.err()).isEqualTo("err\n");

        DockerCli.Result missing = docker.run("run", "--rm", image, "no-such-command");
        assertThat(missing.exitCode()).isEqualTo(127);
        assertThat(missing.err()).contains("executable file not found");
        // --rm removed it although it never ran
        assertThat(docker.ok("ps", "-a", "--format", "{{.Command}}")).doesNotContain("no-such-command");
    }

    @Test
    void stdinReachesTheContainerWithDashI() {
        DockerCli.Result cat = docker.runWithStdin("hello\nworld\n", "run", "--rm", "-i", image, "cat");
        assertThat(cat.exitCode()).as(cat.err()).isZero();
        assertThat(cat.out()).isEqualTo("hello\nworld\n");
    }

    @Test
    void ttyRunAndExecThroughAPseudoTerminal() {
        Command.require("script", "util-linux");
        DockerCli.Result tty = docker.runInTerminal(DockerCli.binary() + " run --rm -t " + image + " busybox tty");
        assertThat(tty.exitCode()).as(tty.all()).isZero();
        assertThat(tty.out()).contains("/dev/pts/");

        docker.ok("run", "-d", "--name", "tty-exec", image, "sleep", "60");
        try {
            DockerCli.Result exec = docker.runInTerminal(DockerCli.binary() + " exec -it tty-exec sh -c 'busybox tty; exit 4'");
            assertThat(exec.exitCode()).as(exec.all()).isEqualTo(4);
            assertThat(exec.out()).contains("/dev/pts/");
        } finally {
            docker.run("rm", "-f", "tty-exec");
        }
    }

    @ParameterizedTest
    @CsvSource({"--runtime,runc,container", "--runtime,runsc,gvisor", "--isolation,gvisor,gvisor",
            "--isolation,container,container", "--runtime,kiln-gvisor,gvisor"})
    void runtimeAndIsolationFlagsChooseKilnsIsolation(String flag, String value, String isolation) {
        if (isolation.equals("gvisor")) {
            Command.require("runsc", "runsc");
        }
        String name = "iso-" + value;
        DockerCli.Result r = docker.run("run", "--name", name, flag, value, image, "sh", "-c",
                "echo hi; busybox dmesg 2>/dev/null | head -n 1");
        try {
            assertThat(r.exitCode()).as(r.err()).isZero();
            assertThat(r.out()).startsWith("hi\n");
            if (isolation.equals("gvisor")) {
                assertThat(r.out()).contains("gVisor"); // the Sentry's kernel log, not the host's
            }
            assertThat(docker.ok("inspect", "--format", "{{.HostConfig.Isolation}}", name).strip())
                    .isEqualTo(isolation);
        } finally {
            docker.run("rm", name);
        }
    }

    @Test
    void detachedContainerLifeCycle() throws Exception {
        Instant t0 = Instant.now().minusSeconds(1);
        String id = docker.ok("run", "-d", "--name", "life", "-l", "suite=docker", image, "sh", "-c",
                "trap 'echo bye; exit 0' TERM; echo started; while true; do sleep 0.2; done").strip();
        assertThat(id).matches("[a-f0-9]{64}");
        awaitLog("life", "started");

        assertThat(docker.ok("ps", "--format", "{{.ID}} {{.Names}} {{.State}}")).contains(id.substring(0, 12)
                + " life running");
        assertThat(docker.ok("ps", "-q", "--filter", "label=suite=docker")).contains(id.substring(0, 12));
        assertThat(docker.ok("ps", "-q", "--filter", "label=suite=other")).isEmpty();
        assertThat(docker.ok("ps", "-q", "--filter", "name=lif")).contains(id.substring(0, 12));
        assertThat(docker.ok("ps", "-q", "--filter", "ancestor=" + image)).contains(id.substring(0, 12));
        assertThat(docker.ok("inspect", "--format", "{{.State.Status}} {{.Name}} {{.Config.Image}}", "life")
                .strip()).isEqualTo("running /life " + image);

        DockerCli.Result exec = docker.run("exec", "life", "sh", "-c", "echo from exec; echo to err >&2; exit 3");
        assertThat(exec.exitCode()).isEqualTo(3);
        assertThat(exec.out()).isEqualTo("from exec\n");
        assertThat(exec.err()).isEqualTo("to err\n");

        assertThat(docker.ok("top", "life")).contains("sleep");
        assertThat(docker.ok("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "life")).startsWith("life ");

        docker.ok("stop", "-t", "5", "life");
        assertThat(docker.ok("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "life").strip())
                .isEqualTo("exited 0");
        assertThat(docker.ok("logs", "life")).isEqualTo("started\nbye\n");
        assertThat(docker.ok("logs", "--tail", "1", "life")).isEqualTo("bye\n");
        assertThat(docker.ok("logs", "-t", "life").lines().toList()).allMatch(l ->
                l.matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}Z (started|bye)"));
        assertThat(docker.ok("ps", "-q")).doesNotContain(id.substring(0, 12));
        assertThat(docker.ok("ps", "-aq", "--filter", "status=exited")).contains(id.substring(0, 12));
        assertThat(docker.ok("wait", "life").strip()).isEqualTo("0");

        docker.ok("rename", "life", "life2");
        docker.ok("rm", "-f", "life2");
        assertThat(docker.ok("ps", "-aq")).doesNotContain(id.substring(0, 12));

        String events = docker.ok("events", "--since", Long.toString(t0.getEpochSecond()), "--until",
                Long.toString(Instant.now().getEpochSecond() + 1), "--filter", "container=" + id);
        assertThat(events).contains("container create " + id).contains("container start " + id)
                .contains("container die " + id).contains("exitCode=0").contains("container destroy " + id);
        assertThat(docker.ok("events", "--since", Long.toString(t0.getEpochSecond()), "--until",
                Long.toString(Instant.now().getEpochSecond() + 1), "--filter", "event=die",
                "--filter", "container=" + id).lines()).hasSize(1);
    }

    @Test
    void logsFollowEndsWhenTheContainerExits() {
        docker.ok("run", "-d", "--name", "follow", image, "sh", "-c",
                "for i in 1 2 3; do echo line$i; echo err$i >&2; sleep 0.3; done");
        try {
            long t0 = System.nanoTime();
            DockerCli.Result logs = docker.run("logs", "-f", "follow");
            assertThat(logs.exitCode()).isZero();
            assertThat(logs.out()).isEqualTo("line1\nline2\nline3\n");
            assertThat(logs.err()).isEqualTo("err1\nerr2\nerr3\n");
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(DockerCli.TIMEOUT);
        } finally {
            docker.run("rm", "-f", "follow");
        }
    }

    @Test
    void errorsAreDockersAndExitCodesTheCLIs() {
        String missing = image.substring(0, image.indexOf('/')) + "/no/such:1";
        DockerCli.Result noImage = docker.run("run", "--rm", missing, "true");
        assertThat(noImage.exitCode()).isEqualTo(125);
        assertThat(noImage.err()).contains("Unable to find image '" + missing + "' locally");

        DockerCli.Result noContainer = docker.run("stop", "nope");
        assertThat(noContainer.exitCode()).isEqualTo(1);
        assertThat(noContainer.err()).contains("No such container: nope");

        DockerCli.Result conflict = fixture.runUnderATakenName();
        assertThat(conflict.exitCode()).isEqualTo(125);
        assertThat(conflict.err()).contains("The container name \"/taken\" is already in use");

        DockerCli.Result ports = docker.run("run", "--rm", "-p", "8080-8081:80", image, "true");
        assertThat(ports.exitCode()).isEqualTo(125);
        assertThat(ports.err()).contains("kiln does not support host port \"8080-8081\"");
        DockerCli.Result bind = docker.run("run", "--rm", "-v", "/tmp:/", image, "true");
        assertThat(bind.exitCode()).isEqualTo(125);
        assertThat(bind.err()).contains("the sandbox's root cannot be replaced by a mount");
        DockerCli.Result network = docker.run("network", "connect", "bridge", "nosuch");
        assertThat(network.exitCode()).isEqualTo(1);
        assertThat(network.err()).contains("nosuch"); // connect works (DockerNetworkConnectTest); no such container
        assertThat(docker.ok("network", "ls", "--format", "{{.Name}}").lines()).contains("bridge", "host", "none");
        DockerCli.Result volume = docker.run("volume", "create", "../v1");
        assertThat(volume.exitCode()).isEqualTo(1);
        assertThat(volume.err()).contains("invalid volume name");
    }

    @Test
    void saveLoadAttachAndRestart() {
        String repo = image.substring(0, image.lastIndexOf(':'));
        docker.ok("tag", image, repo + ":saved");
        Path archive = work.resolve("saved.tar");
        docker.ok("save", "-o", archive.toString(), repo + ":saved");
        docker.ok("rmi", repo + ":saved");
        assertThat(docker.ok("load", "-i", archive.toString())).contains("Loaded image: " + repo + ":saved");
        assertThat(docker.ok("images", "--format", "{{.Repository}}:{{.Tag}}")).contains(repo + ":saved");
        docker.ok("rmi", repo + ":saved");

        docker.ok("run", "-d", "--name", "attached", image, "sh", "-c",
                "sleep 0.5; for i in 1 2 3; do echo a$i; sleep 0.3; done; exit 5");
        try {
            DockerCli.Result attach = docker.run("attach", "attached");
            assertThat(attach.exitCode()).isEqualTo(5);
            assertThat(attach.out()).endsWith("a3\n");
            docker.ok("restart", "attached");
            assertThat(docker.ok("wait", "attached").strip()).isEqualTo("5");
            assertThat(docker.ok("inspect", "--format", "{{.RestartCount}}", "attached").strip()).isEqualTo("1");
        } finally {
            docker.run("rm", "-f", "attached");
        }
    }

    @Test
    void pingVersionsAndUnsupportedEndpointsOverRawHttp() {
        Command.require("curl", "curl");
        String ping = curl("-sS", "-i", "http://d/_ping");
        assertThat(ping).startsWith("HTTP/1.1 200").containsIgnoringCase("API-Version: 1.45")
                .containsIgnoringCase("OSType: linux").containsIgnoringCase("Docker-Experimental: false").endsWith("OK");
        assertThat(curl("-sS", "-I", "http://d/_ping")).startsWith("HTTP/1.1 200").containsIgnoringCase("API-Version: 1.45");
        assertThat(curl("-sS", "http://d/v1.24/version")).contains("\"ApiVersion\":\"1.45\"");
        assertThat(curl("-sS", "-w", " %{http_code}", "http://d/v1.99/version"))
                .contains("client version 1.99 is too new").endsWith(" 400");
        // POST /build is served (issue 16): without a context there is no Dockerfile to read
        assertThat(curl("-sS", "-w", " %{http_code}", "-X", "POST", "http://d/v1.45/build"))
                .isEqualTo("{\"message\":\"Cannot locate specified Dockerfile: Dockerfile\"} 400");
        assertThat(ping).containsIgnoringCase("Builder-Version: 1");
        assertThat(curl("-sS", "-w", " %{http_code}", "-X", "POST", "http://d/v1.45/plugins/pull"))
                .contains("kiln does not support").endsWith(" 501");
        assertThat(curl("-sS", "-w", " %{http_code}", "http://d/containers/nope/json"))
                .isEqualTo("{\"message\":\"No such container: nope\"} 404");
        // kiln's own API is untouched
        assertThat(curl("-sS", "http://d/v1/version")).contains("\"api\":\"v1\"");
    }

    private static String curl(String... args) {
        java.util.List<String> argv = new java.util.ArrayList<>(java.util.List.of("curl", "--unix-socket",
                fixture.daemon.socket().toString(), "--max-time", "20"));
        argv.addAll(java.util.List.of(args));
        return Command.run(Duration.ofSeconds(30), argv).replace("\r\n", "\n").strip();
    }

    private static void awaitLog(String name, String text) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < deadline) {
            if (docker.run("logs", name).out().contains(text)) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError(name + " never logged " + text);
    }
}
