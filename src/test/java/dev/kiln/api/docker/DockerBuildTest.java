package dev.kiln.api.docker;

import dev.kiln.testing.Command;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The real docker CLI and docker-compose building through kilnd (issue 16): {@code docker build -t x .} takes the
 * classic builder's {@code POST /build} (kilnd's ping says Builder-Version 1), then {@code docker run x},
 * {@code docker history}, {@code docker commit}, {@code docker builder prune}; {@code docker-compose build} for a
 * service with a {@code build:} key.
 */
class DockerBuildTest {
    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;

    @BeforeAll
    static void start() throws Exception {
        fixture.start(work, "kiln-dbt-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);
    }

    @AfterAll
    static void stop() {
        fixture.close();
    }

    @Test
    void dockerBuildThenRun() throws Exception {
        Path ctx = Files.createDirectories(work.resolve("ctx"));
        Files.writeString(ctx.resolve("Dockerfile"), """
                FROM %s
                ARG MESSAGE=unset
                COPY greeting.txt /greeting.txt
                RUN echo "$MESSAGE" >> /greeting.txt
                LABEL org.example.kind=test
                CMD ["cat", "/greeting.txt"]
                """.formatted(image));
        Files.writeString(ctx.resolve("greeting.txt"), "hello from the context\n");
        DockerCli.Result r = docker.run("build", "-t", "built:1", "--build-arg", "MESSAGE=built by kiln",
                ctx.toString());
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out() + r.err()).contains("Step 4/6 : RUN echo \"$MESSAGE\" >> /greeting.txt")
                .contains("Successfully built").contains("Successfully tagged built:1");
        assertThat(docker.ok("run", "--rm", "built:1")).isEqualTo("hello from the context\nbuilt by kiln\n");
        assertThat(docker.ok("inspect", "-f", "{{index .Config.Labels \"org.example.kind\"}}", "built:1").strip())
                .isEqualTo("test");

        String history = docker.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "built:1");
        assertThat(history.lines().limit(4).toList()).containsExactly(
                "/bin/sh -c #(nop)  CMD [\"cat\",\"/greeting.txt\"]|0B",
                "/bin/sh -c #(nop)  LABEL org.example.kind=test|0B",
                "|1 MESSAGE=built by kiln /bin/sh -c echo \"$MESSAGE\" >> /greeting.txt|" + history.lines().skip(2)
                        .findFirst().orElseThrow().replaceAll(".*\\|", ""),
                history.lines().skip(3).findFirst().orElseThrow());
        assertThat(history.lines().skip(3).findFirst().orElseThrow()).startsWith("/bin/sh -c #(nop) COPY file:");

        DockerCli.Result again = docker.run("build", "-q", "-t", "built:1", "--build-arg", "MESSAGE=built by kiln",
                ctx.toString());
        assertThat(again.out().strip()).isEqualTo(docker.ok("inspect", "-f", "{{.Id}}", "built:1").strip());

        docker.ok("run", "--name", "to-commit", image, "sh", "-c", "echo committed > /marker");
        String id = docker.ok("commit", "-c", "CMD [\"cat\", \"/marker\"]", "to-commit", "committed:1").strip();
        assertThat(id).startsWith("sha256:");
        assertThat(docker.ok("run", "--rm", "committed:1")).isEqualTo("committed\n");
        docker.ok("rm", "to-commit");

        DockerCli.Result failed = docker.run("build", Files.writeString(Files.createDirectories(work.resolve("bad"))
                .resolve("Dockerfile"), "FROM " + image + "\nRUN exit 7\n").getParent().toString());
        assertThat(failed.exitCode()).isEqualTo(1);
        assertThat(failed.err()).contains("The command '/bin/sh -c exit 7' returned a non-zero code: 7");

        assertThat(docker.ok("builder", "prune", "-f")).contains("Total reclaimed space");
        assertThat(docker.ok("run", "--rm", "built:1")).as("named images survive the prune")
                .isEqualTo("hello from the context\nbuilt by kiln\n");
    }

    @Test
    void composeBuild() throws Exception {
        Path compose = Command.require("docker-compose", "docker-compose");
        Path project = Files.createDirectories(work.resolve("project"));
        Path app = Files.createDirectories(project.resolve("app"));
        Files.writeString(app.resolve("Dockerfile"), "FROM " + image + "\nRUN echo composed > /built\n"
                + "CMD [\"cat\", \"/built\"]\n");
        Files.writeString(project.resolve("docker-compose.yml"), """
                version: "3.8"
                services:
                  web:
                    build: ./app
                    image: composed/web:1
                """);
        List<String> argv = new ArrayList<>(List.of(compose.toString(), "build"));
        ProcessBuilder pb = new ProcessBuilder(argv).directory(project.toFile()).redirectErrorStream(true);
        pb.environment().put("DOCKER_HOST", "unix://" + fixture.daemon.socket());
        pb.environment().put("DOCKER_CONFIG", work.resolve("docker-config").toString());
        Process p = pb.start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(300, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(output).isZero();
        assertThat(output).contains("Successfully built").contains("Successfully tagged composed/web:1");
        assertThat(docker.ok("run", "--rm", "composed/web:1")).isEqualTo("composed\n");
    }
}
