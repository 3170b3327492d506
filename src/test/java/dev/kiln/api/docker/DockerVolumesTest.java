package dev.kiln.api.docker;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testing.Command;
import dev.kiln.testing.NetworkTests;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Storage through the real clients: the docker CLI's {@code -v}, {@code --mount}, {@code --tmpfs} and
 * {@code volume create/ls/inspect/rm/prune}, and Debian's docker-compose 1.29 bringing up an application whose web
 * service serves a file another service wrote into a named volume, with a bind-mounted config directory and a
 * published port; {@code up -d, ps, logs, exec, stop, start, down -v} leaving nothing.
 */
class DockerVolumesTest {

    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;

    @BeforeAll
    static void start() throws Exception {
        NetworkTests.requireCniPlugins();
        fixture.start(work, "kiln-dvol-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);
    }

    @AfterAll
    static void stop() {
        if (docker != null) {
            fixture.removeContainers();
            docker.run("volume", "prune", "-af");
            docker.run("network", "prune", "-f");
        }
        fixture.close();
    }

    @Test
    void dockerCliMountsAndVolumeCommands() throws Exception {
        Path dir = Files.createDirectories(work.resolve("bind"));
        Files.writeString(dir.resolve("in"), "from-host\n");
        assertThat(docker.ok("volume", "create", "--label", "app=kiln", "dv1").strip()).isEqualTo("dv1");
        assertThat(docker.ok("volume", "ls", "-q", "--filter", "label=app=kiln").strip()).isEqualTo("dv1");
        assertThat(docker.ok("volume", "ls", "-q", "--filter", "dangling=true").lines()).contains("dv1");

        String out = docker.ok("run", "--rm", "-v", dir + ":/in:ro", "--mount", "type=volume,src=dv1,dst=/data",
                "--tmpfs", "/scratch:size=1m", image, "sh", "-c",
                "cat /in/in; echo kept > /data/f; echo x > /in/no || echo refused; echo t > /scratch/t && cat /scratch/t");
        assertThat(out.lines().toList()).containsExactly("from-host", "refused", "t");
        assertThat(dir.resolve("no")).doesNotExist();
        assertThat(docker.ok("run", "--rm", "-v", "dv1:/data", image, "cat", "/data/f")).isEqualTo("kept\n");

        docker.ok("create", "--name", "holder", "-v", "dv1:/data", "-v", "/anon", image, "true");
        JsonNode c = new ObjectMapper().readTree(docker.ok("inspect", "holder")).get(0);
        assertThat(c.at("/HostConfig/Binds/0").asText()).isEqualTo("dv1:/data");
        JsonNode mounts = c.path("Mounts");
        assertThat(mounts).hasSize(2);
        JsonNode named = mounts.get(0).path("Name").asText().equals("dv1") ? mounts.get(0) : mounts.get(1);
        assertThat(named.path("Type").asText()).isEqualTo("volume");
        assertThat(named.path("Destination").asText()).isEqualTo("/data");
        assertThat(named.path("Driver").asText()).isEqualTo("local");
        assertThat(named.path("RW").asBoolean()).isTrue();
        DockerCli.Result inUse = docker.run("volume", "rm", "dv1");
        assertThat(inUse.exitCode()).isNotZero();
        assertThat(inUse.err()).contains("in use");
        String anonymous = (named == mounts.get(0) ? mounts.get(1) : mounts.get(0)).path("Name").asText();
        docker.ok("rm", "-v", "holder");
        assertThat(docker.ok("volume", "ls", "-q").lines()).doesNotContain(anonymous);
        docker.ok("volume", "rm", "dv1");

        DockerCli.Result missing = docker.run("run", "--rm", "--mount",
                "type=bind,src=" + work.resolve("nope") + ",dst=/x", image, "true");
        assertThat(missing.exitCode()).isEqualTo(125);
        assertThat(missing.err()).contains("does not exist");
        DockerCli.Result root = docker.run("run", "--rm", "-v", dir + ":/", image, "true");
        assertThat(root.exitCode()).isEqualTo(125);

        docker.ok("volume", "create", "dv-prune");
        assertThat(docker.ok("volume", "prune", "-af")).contains("dv-prune");
        assertThat(docker.ok("volume", "ls", "-q")).isEmpty();
    }

    /** The application without a user network: kiln's default bridge, services apart (no name lookups). */
    @Test
    void composeUpPsLogsExecStopStartDown() throws Exception {
        Path app = composeProject("app1", """
                services:
                  writer:
                    image: ${IMAGE}
                    command: ["sh", "-c", "echo hello-from-writer > /shared/index.html; echo wrote; sleep 100000"]
                    volumes:
                      - shared:/shared
                    network_mode: bridge
                  web:
                    image: ${IMAGE}
                    depends_on: [writer]
                    command: ["httpd", "-f", "-p", "8080", "-c", "/config/httpd.conf", "-h", "/www"]
                    volumes:
                      - shared:/www:ro
                      - ./config:/config:ro
                    ports: ["8080"]
                    network_mode: bridge
                volumes:
                  shared: {}
                """);
        compose(app, "up", "-d");
        String ps = compose(app, "ps");
        assertThat(ps).containsPattern("app1_web_1 .* Up ").containsPattern("app1_writer_1 .* Up ");
        assertThat(get(app, "index.html")).isEqualTo("hello-from-writer\n");
        assertThat(compose(app, "logs", "--no-color", "writer")).contains("wrote");
        assertThat(compose(app, "exec", "-T", "web", "cat", "/config/httpd.conf")).isEqualTo("H:/www\n");

        compose(app, "stop", "-t", "1");
        assertThat(compose(app, "ps")).containsPattern("app1_web_1 .* Exit ");
        compose(app, "start");
        assertThat(get(app, "index.html")).isEqualTo("hello-from-writer\n");

        compose(app, "down", "-v");
        assertThat(docker.ok("ps", "-aq")).isEmpty();
        assertThat(docker.ok("volume", "ls", "-q")).isEmpty();
        assertThat(docker.ok("network", "ls", "--filter", "label=com.docker.compose.project=app1", "-q")).isEmpty();
    }

    /**
     * Isolation chosen per service: the writer is a microVM ({@code runtime: kiln-vm}, compose file 2.4) writing into
     * the named volume through virtio-fs; the web service, a container, serves what it wrote.
     */
    @Test
    @org.junit.jupiter.api.Tag("slow")
    void composeWithAVmService() throws Exception {
        dev.kiln.testing.VmTests.require();
        Path app = composeProject("app3", """
                services:
                  writer:
                    image: ${IMAGE}
                    runtime: kiln-vm
                    command: ["sh", "-c", "echo hello-from-a-vm > /shared/index.html; echo wrote; sleep 100000"]
                    volumes:
                      - shared:/shared
                    network_mode: bridge
                  web:
                    image: ${IMAGE}
                    depends_on: [writer]
                    command: ["httpd", "-f", "-p", "8080", "-c", "/config/httpd.conf", "-h", "/www"]
                    volumes:
                      - shared:/www:ro
                      - ./config:/config:ro
                    ports: ["8080"]
                    network_mode: bridge
                volumes:
                  shared: {}
                """, "2.4");
        try {
            compose(app, "up", "-d");
            JsonNode writer = new ObjectMapper().readTree(docker.ok("inspect", "app3_writer_1")).get(0);
            assertThat(writer.at("/HostConfig/Isolation").asText()).isEqualTo("vm");
            long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
            while (!compose(app, "logs", "--no-color", "writer").contains("wrote") && System.nanoTime() < deadline) {
                Thread.sleep(500);
            }
            assertThat(get(app, "index.html")).isEqualTo("hello-from-a-vm\n");
        } finally {
            composeRun(app, "down", "-v");
        }
        assertThat(docker.ok("ps", "-aq")).isEmpty();
        assertThat(docker.ok("volume", "ls", "-q")).isEmpty();
    }

    /**
     * The same application on a user network, where a client service finds {@code web} by its service name (compose
     * asks for it as a network alias), web's {@code healthcheck} turns it healthy in {@code ps}, and a service that
     * fails is restarted by its {@code restart: on-failure:2} policy, then left exited.
     */
    @Test
    void composeServicesFindEachOtherByNameOnAUserNetwork() throws Exception {
        Path app = composeProject("app2", """
                services:
                  writer:
                    image: ${IMAGE}
                    command: ["sh", "-c", "echo hello-from-writer > /shared/index.html; sleep 100000"]
                    volumes: [shared:/shared]
                    networks: [back]
                  web:
                    image: ${IMAGE}
                    depends_on: [writer]
                    command: ["httpd", "-f", "-p", "8080", "-c", "/config/httpd.conf", "-h", "/www"]
                    volumes: [shared:/www:ro, ./config:/config:ro]
                    ports: ["8080"]
                    networks: [back]
                    healthcheck:
                      test: ["CMD", "busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/index.html"]
                      interval: 1s
                      timeout: 5s
                      retries: 3
                  flaky:
                    image: ${IMAGE}
                    command: ["sh", "-c", "echo attempt; exit 3"]
                    restart: on-failure:2
                    networks: [back]
                  client:
                    image: ${IMAGE}
                    depends_on: [web]
                    command: ["sh", "-c", "while true; do busybox wget -q -O - http://web:8080/index.html; sleep 1; done"]
                    networks: [back]
                volumes:
                  shared: {}
                networks:
                  back: {}
                """);
        try {
            Result up = composeRun(app, "up", "-d");
            assertThat(up.exitCode()).as(up.err()).isZero();
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            String logs = "";
            while (System.nanoTime() < deadline && !logs.contains("hello-from-writer")) {
                Thread.sleep(500);
                logs = compose(app, "logs", "--no-color", "client");
            }
            assertThat(logs).contains("hello-from-writer");
            String ps = "";
            while (System.nanoTime() < deadline && !ps.matches("(?s).*app2_web_1 .*Up \\(healthy\\).*")) {
                Thread.sleep(500);
                ps = compose(app, "ps");
            }
            assertThat(ps).containsPattern("app2_web_1 .*Up \\(healthy\\)");
            String flaky = "";
            while (System.nanoTime() < deadline && !flaky.equals("exited 2")) {
                Thread.sleep(500);
                flaky = docker.ok("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "app2_flaky_1").strip();
            }
            assertThat(flaky).as("on-failure:2: two restarts, then left exited").isEqualTo("exited 2");
            assertThat(compose(app, "logs", "--no-color", "flaky").lines().filter(l -> l.contains("attempt")))
                    .hasSize(3);
        } finally {
            composeRun(app, "down", "-v");
        }
        assertThat(docker.ok("ps", "-aq")).isEmpty();
        assertThat(docker.ok("volume", "ls", "-q")).isEmpty();
    }

    private static Path composeProject(String name, String yaml) throws IOException {
        return composeProject(name, yaml, "3.8");
    }

    private static Path composeProject(String name, String yaml, String version) throws IOException {
        Command.require("docker-compose", "docker-compose");
        Path app = Files.createDirectories(work.resolve(name));
        Files.createDirectories(app.resolve("config"));
        Files.writeString(app.resolve("config/httpd.conf"), "H:/www\n");
        Files.writeString(app.resolve("docker-compose.yml"), "version: \"" + version + "\"\n" + yaml);
        return app;
    }

    private static String get(Path app, String file) throws Exception {
        String port = compose(app, "port", "web", "8080").strip();
        port = port.substring(port.lastIndexOf(':') + 1);
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (true) {
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                        + "/" + file)).timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200 || System.nanoTime() > deadline) {
                    return r.body();
                }
            } catch (IOException e) {
                if (System.nanoTime() > deadline) throw e;
            }
            Thread.sleep(200);
        }
    }

    record Result(int exitCode, String out, String err) {
    }

    private static String compose(Path app, String... args) throws Exception {
        Result r = composeRun(app, args);
        if (r.exitCode() != 0) {
            throw new AssertionError("docker-compose " + String.join(" ", args) + " exited " + r.exitCode()
                    + "\nstdout: " + r.out() + "\nstderr: " + r.err());
        }
        return r.out();
    }

    /** docker-compose in the project's directory, against kilnd's socket, with the fixture image as $IMAGE. */
    private static Result composeRun(Path app, String... args) throws Exception {
        List<String> argv = new ArrayList<>(List.of("docker-compose", "-p", app.getFileName().toString()));
        argv.addAll(List.of(args));
        Path out = Files.createTempFile(work, "compose-out-", ".txt");
        Path err = Files.createTempFile(work, "compose-err-", ".txt");
        ProcessBuilder pb = new ProcessBuilder(argv).directory(app.toFile()).redirectInput(
                ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().put("DOCKER_HOST", "unix://" + fixture.daemon.socket());
        pb.environment().put("IMAGE", image);
        pb.environment().put("COMPOSE_INTERACTIVE_NO_CLI", "1");
        Process p = pb.start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            Command.destroyTree(p.toHandle());
            throw new AssertionError("docker-compose " + argv + " timed out: " + Files.readString(err));
        }
        return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                Files.readString(err, StandardCharsets.UTF_8));
    }
}
