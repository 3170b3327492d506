package dev.kiln.api.docker;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testing.NetworkTests;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The real {@code docker} CLI's network commands against kilnd: create, ls, inspect, rm (in use, predefined, done),
 * and {@code docker run --network NET} finding a sibling by name through kilnd's resolver (skipped, saying why, while
 * the Docker face's container create refuses network modes other than the default).
 */
class DockerNetworkCliTest {

    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;

    @BeforeAll
    static void start() throws Exception {
        NetworkTests.requireCniPlugins();
        fixture.start(work, "kiln-dnet-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);
    }

    @AfterAll
    static void stop() {
        if (docker != null) {
            fixture.removeContainers();
            docker.run("network", "prune", "-f");
        }
        fixture.close(); // and the bridges its root made
    }

    @Test
    void createListInspectRunByNameAndRemove() throws Exception {
        String id = docker.ok("network", "create", "--label", "app=web", "dnet").strip();
        assertThat(id).matches("[0-9a-f]{64}");
        assertThat(docker.run("network", "create", "dnet").exitCode()).isNotZero();

        String ls = docker.ok("network", "ls");
        assertThat(ls).containsPattern(id.substring(0, 12) + " +dnet +bridge +local")
                .containsPattern("bridge +bridge +local").containsPattern("host +host +local")
                .containsPattern("none +null +local");
        assertThat(docker.ok("network", "ls", "-q", "--filter", "label=app=web").strip())
                .isEqualTo(id.substring(0, 12));

        JsonNode n = new ObjectMapper().readTree(docker.ok("network", "inspect", "dnet")).path(0);
        assertThat(n.path("Id").asText()).isEqualTo(id);
        assertThat(n.path("Driver").asText()).isEqualTo("bridge");
        assertThat(n.path("Scope").asText()).isEqualTo("local");
        assertThat(n.path("Labels").path("app").asText()).isEqualTo("web");
        String gateway = n.path("IPAM").path("Config").path(0).path("Gateway").asText();
        assertThat(gateway).isNotEmpty();
        assertThat(docker.ok("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge").strip())
                .matches("10\\.\\d+\\.\\d+\\.0/\\d+");

        // a sandbox on it, made through kiln's own CLI (the same daemon): the Docker face lists it as an endpoint
        java.io.StringWriter out = new java.io.StringWriter();
        java.io.StringWriter err = new java.io.StringWriter();
        int code = dev.kiln.cli.Main.run(new String[] {"--host", fixture.daemon.host(), "run", "-d", "--network",
                "dnet", "--name", "dweb", image, "httpd", "-f", "-p", "8080"}, new java.io.PrintWriter(out, true),
                new java.io.PrintWriter(err, true));
        assertThat(code).as(err.toString()).isZero();
        JsonNode endpoint = new ObjectMapper().readTree(docker.ok("network", "inspect", "dnet")).path(0)
                .path("Containers").path(out.toString().strip());
        assertThat(endpoint.path("Name").asText()).isEqualTo("dweb");
        assertThat(endpoint.path("IPv4Address").asText()).matches("10\\.[0-9.]+/24");

        DockerCli.Result inUse = docker.run("network", "rm", "dnet");
        assertThat(inUse.exitCode()).isNotZero();
        assertThat(inUse.err()).contains("in use").contains("dweb");
        DockerCli.Result predefined = docker.run("network", "rm", "bridge");
        assertThat(predefined.exitCode()).isNotZero();
        assertThat(predefined.err()).contains("pre-defined network");

        docker.ok("rm", "-f", "dweb");
        assertThat(docker.ok("network", "rm", "dnet").strip()).isEqualTo("dnet");
        assertThat(Path.of("/sys/class/net", "kiln-" + id.substring(0, 8))).doesNotExist();
        assertThat(docker.run("network", "inspect", "dnet").err()).contains("not found");
    }

    @Test
    void runOnAUserNetworkResolvesSiblingsByName() throws Exception {
        docker.ok("network", "create", "dnet2");
        DockerCli.Result web = docker.run("run", "-d", "--network", "dnet2", "--name", "dweb2", image, "httpd", "-f",
                "-p", "8080");
        assertThat(web.exitCode()).as(web.err()).isZero();
        try {
            String cidr = new ObjectMapper().readTree(docker.ok("network", "inspect", "dnet2")).path(0)
                    .path("Containers").properties().iterator().next().getValue().path("IPv4Address").asText();
            String answer = docker.ok("run", "--rm", "--network", "dnet2", image, "busybox", "nslookup", "dweb2");
            assertThat(answer).contains("Address: " + cidr.substring(0, cidr.indexOf('/')));
        } finally {
            docker.run("rm", "-f", "dweb2");
            docker.run("network", "rm", "dnet2");
        }
    }
}
