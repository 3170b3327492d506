package dev.kiln.api.docker;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testing.Command;
import dev.kiln.testing.NetworkTests;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code docker network connect/disconnect} through the real docker CLI: a running container joins a second user
 * network (a second interface in its namespace), resolves the names there and is resolved by them, under its name and
 * the aliases given; inspect lists every network; disconnect takes the interface away; a restart joins again;
 * {@code --network-alias} and {@code --ip} at create. Nothing is left: bridges go with their networks.
 */
class DockerNetworkConnectTest {

    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;

    @BeforeAll
    static void start() throws Exception {
        NetworkTests.requireCniPlugins();
        fixture.start(work, "kiln-conn-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);
    }

    @AfterEach
    void clean() {
        fixture.removeContainers();
        docker.run("network", "prune", "-f");
    }

    @AfterAll
    static void stop() {
        fixture.close(); // and the bridges its root made
    }

    private static JsonNode inspect(String... args) throws Exception {
        return new ObjectMapper().readTree(docker.ok(args)).path(0);
    }

    /** The address busybox nslookup gives for {@code name} asked from {@code container}; empty when not found. */
    private static String lookup(String container, String name) {
        DockerCli.Result r = docker.run("exec", container, "busybox", "nslookup", name);
        if (r.exitCode() != 0) {
            return "";
        }
        String[] parts = r.out().substring(r.out().indexOf("Name:")).split("Address:? ");
        return parts.length < 2 ? "" : parts[1].strip().split("\\s")[0];
    }

    private static String bridgeOf(String network) throws Exception {
        return "kiln-" + inspect("network", "inspect", network).path("Id").asText().substring(0, 8);
    }

    @Test
    void aRunningContainerJoinsASecondNetworkAndResolvesOnBoth() throws Exception {
        docker.ok("network", "create", "front");
        docker.ok("network", "create", "back");
        String bridgeBack = bridgeOf("back");
        docker.ok("run", "-d", "--name", "app", "--network", "front", "--network-alias", "web", image, "sleep", "300");
        docker.ok("run", "-d", "--name", "db", "--network", "back", image, "sleep", "300");
        docker.ok("run", "-d", "--name", "client", "--network", "front", image, "sleep", "300");
        assertThat(lookup("app", "db")).as("not on back yet").isEmpty();
        assertThat(lookup("client", "web")).as("--network-alias on front")
                .isEqualTo(inspect("inspect", "app").path("NetworkSettings").path("Networks").path("front")
                        .path("IPAddress").asText());

        docker.ok("network", "connect", "--alias", "api", "back", "app");
        JsonNode networks = inspect("inspect", "app").path("NetworkSettings").path("Networks");
        assertThat(networks.properties().stream().map(java.util.Map.Entry::getKey).toList())
                .containsExactly("front", "back");
        // the short ID too, as Docker up to API 1.44 (docker-compose 1.x reads it: SandboxView.withShortId)
        String shortId = inspect("inspect", "app").path("Id").asText().substring(0, 12);
        assertThat(networks.path("front").path("Aliases").toString()).isEqualTo("[\"web\",\"" + shortId + "\"]");
        assertThat(networks.path("back").path("Aliases").toString()).isEqualTo("[\"api\",\"" + shortId + "\"]");
        String appOnBack = networks.path("back").path("IPAddress").asText();
        assertThat(appOnBack).isNotEmpty();
        assertThat(docker.ok("exec", "app", "busybox", "ip", "-o", "-4", "addr", "show", "eth1"))
                .contains(appOnBack + "/");
        String dbAddress = inspect("inspect", "db").path("NetworkSettings").path("Networks").path("back")
                .path("IPAddress").asText();
        assertThat(lookup("app", "db")).as("app asks front's resolver, which knows it is on back too")
                .isEqualTo(dbAddress);
        assertThat(lookup("db", "app")).isEqualTo(appOnBack);
        assertThat(lookup("db", "api")).isEqualTo(appOnBack);
        assertThat(lookup("db", "web")).as("front's alias is not a name on back").isEmpty();
        assertThat(docker.run("exec", "app", "busybox", "ping", "-c", "1", "-W", "3", "db").exitCode())
                .as("traffic to back goes through the second interface").isZero();
        // stats' networks: the CLI sums them into NET I/O (without the key it shows 0B / 0B)
        assertThat(docker.ok("stats", "--no-stream", "--format", "{{.NetIO}}", "app").strip())
                .isNotEqualTo("0B / 0B").matches("[0-9.]+k?B / [0-9.]+k?B");
        assertThat(inspect("network", "inspect", "back").path("Containers").toString()).contains("\"Name\":\"app\"");
        assertThat(docker.run("network", "rm", "back").err()).contains("in use").contains("app");
        DockerCli.Result twice = docker.run("network", "connect", "back", "app");
        assertThat(twice.exitCode()).isNotZero();
        assertThat(twice.err()).contains("already on network back");

        // a restart joins it again
        docker.ok("restart", "-t", "0", "app");
        assertThat(lookup("db", "api")).isEqualTo(inspect("inspect", "app").path("NetworkSettings")
                .path("Networks").path("back").path("IPAddress").asText()).isNotEmpty();

        docker.ok("network", "disconnect", "back", "app");
        assertThat(docker.run("exec", "app", "busybox", "ip", "link", "show", "eth1").exitCode()).isNotZero();
        assertThat(lookup("db", "api")).isEmpty();
        assertThat(inspect("inspect", "app").path("NetworkSettings").path("Networks").has("back")).isFalse();
        DockerCli.Result first = docker.run("network", "disconnect", "front", "app");
        assertThat(first.exitCode()).isNotZero();
        assertThat(first.err()).contains("created on network front");

        fixture.removeContainers();
        docker.ok("network", "rm", "front", "back");
        assertThat(Path.of("/sys/class/net", bridgeBack)).doesNotExist();
    }

    @Test
    void aStoppedContainerJoinsAtItsNextStart() throws Exception {
        docker.ok("network", "create", "one");
        docker.ok("network", "create", "two");
        docker.ok("create", "--name", "later", "--network", "one", image, "sleep", "300");
        docker.ok("network", "connect", "--alias", "late", "two", "later");
        docker.ok("run", "-d", "--name", "peer", "--network", "two", image, "sleep", "300");
        docker.ok("start", "later");
        String onTwo = inspect("inspect", "later").path("NetworkSettings").path("Networks").path("two")
                .path("IPAddress").asText();
        assertThat(onTwo).isNotEmpty();
        assertThat(lookup("peer", "late")).isEqualTo(onTwo);
        assertThat(lookup("peer", "later")).isEqualTo(onTwo);
    }

    @Test
    void aliasesAndAnAddressAtCreate() throws Exception {
        docker.ok("network", "create", "--subnet", "10.213.7.0/24", "fixed");
        docker.ok("run", "-d", "--name", "pinned", "--network", "fixed", "--ip", "10.213.7.50", "--network-alias",
                "cache", image, "sleep", "300");
        docker.ok("run", "-d", "--name", "asker", "--network", "fixed", image, "sleep", "300");
        assertThat(lookup("asker", "cache")).isEqualTo("10.213.7.50");
        JsonNode endpoint = inspect("inspect", "pinned").path("NetworkSettings").path("Networks").path("fixed");
        assertThat(endpoint.path("IPAddress").asText()).isEqualTo("10.213.7.50");
        assertThat(endpoint.path("IPAMConfig").path("IPv4Address").asText()).isEqualTo("10.213.7.50");

        DockerCli.Result outside = docker.run("run", "--rm", "--network", "fixed", "--ip", "10.99.0.5", image, "true");
        assertThat(outside.exitCode()).isEqualTo(125);
        assertThat(outside.err()).contains("not a host address of network fixed");
        DockerCli.Result onDefault = docker.run("run", "--rm", "--network-alias", "x", image, "true");
        assertThat(onDefault.exitCode()).isEqualTo(125);
    }

    @Test
    void anInternalNetworkKeepsItsTrafficInsideAndAnIpRangeBoundsItsAddresses() throws Exception {
        docker.ok("network", "create", "--internal", "--subnet", "10.213.9.0/24", "--ip-range", "10.213.9.128/25",
                "inner");
        docker.ok("network", "create", "outer");
        String bridge = bridgeOf("inner");
        JsonNode n = inspect("network", "inspect", "inner");
        assertThat(n.path("Internal").asBoolean()).isTrue();
        assertThat(n.path("IPAM").path("Config").path(0).path("IPRange").asText()).isEqualTo("10.213.9.128/25");
        docker.ok("run", "-d", "--name", "target", "--network", "outer", image, "sleep", "300");
        String target = inspect("inspect", "target").path("NetworkSettings").path("Networks").path("outer")
                .path("IPAddress").asText();
        docker.ok("run", "-d", "--name", "inside", "--network", "inner", image, "sleep", "300");
        docker.ok("run", "-d", "--name", "inside2", "--network", "inner", image, "sleep", "300");
        docker.ok("run", "-d", "--name", "outside", "--network", "bridge", image, "sleep", "300");
        String inside = inspect("inspect", "inside").path("NetworkSettings").path("Networks").path("inner")
                .path("IPAddress").asText();
        assertThat(Integer.parseInt(inside.substring(inside.lastIndexOf('.') + 1))).isBetween(128, 254);
        assertThat(docker.run("exec", "outside", "busybox", "ping", "-c", "1", "-W", "2", target).exitCode())
                .as("a normal network reaches past its bridge").isZero();
        assertThat(docker.run("exec", "inside", "busybox", "ping", "-c", "1", "-W", "2", target).exitCode())
                .as("an internal one does not").isNotZero();
        assertThat(lookup("inside", "inside2")).as("names and traffic inside still work").isNotEmpty();
        assertThat(docker.run("exec", "inside", "busybox", "ping", "-c", "1", "-W", "2", "inside2").exitCode())
                .isZero();
        assertThat(Command.run("iptables", "-S", "FORWARD")).contains(bridge);

        DockerCli.Result outsideRange = docker.run("network", "create", "--subnet", "10.213.10.0/24", "--ip-range",
                "10.99.0.0/25", "badrange");
        assertThat(outsideRange.exitCode()).isNotZero();
        assertThat(outsideRange.err()).contains("10.99.0.0/25"); // the docker CLI checks it first; kiln too (CLI test)

        fixture.removeContainers();
        docker.ok("network", "rm", "inner", "outer");
        assertThat(Command.run("iptables", "-S", "FORWARD")).doesNotContain(bridge);
    }

    @Test
    void whatCannotJoinSaysWhy() throws Exception {
        docker.ok("network", "create", "only");
        docker.ok("create", "--name", "isolated", "--network", "none", image, "true");
        DockerCli.Result none = docker.run("network", "connect", "only", "isolated");
        assertThat(none.exitCode()).isNotZero();
        assertThat(none.err()).contains("is on network none");
        DockerCli.Result missing = docker.run("network", "connect", "nosuch", "isolated");
        assertThat(missing.err()).contains("not found");
        if (Command.which("qemu-system-x86_64") != null) { // a create boots nothing
            docker.ok("create", "--name", "guest", "--isolation", "vm", "--network", "only", image, "true");
            DockerCli.Result vm = docker.run("network", "connect", "bridge", "guest");
            assertThat(vm.exitCode()).isNotZero();
            assertThat(vm.err()).contains("made when it boots");
        }
    }

    @Test
    void aGvisorSandboxJoinsASecondNetworkToo() throws Exception {
        Command.require("runsc", "runsc");
        docker.ok("network", "create", "ga");
        docker.ok("network", "create", "gb");
        docker.ok("run", "-d", "--name", "gv", "--runtime", "runsc", "--network", "ga", image, "sleep", "300");
        docker.ok("network", "connect", "gb", "gv");
        String onGb = inspect("inspect", "gv").path("NetworkSettings").path("Networks").path("gb").path("IPAddress")
                .asText();
        assertThat(onGb).isNotEmpty();
        docker.ok("run", "-d", "--name", "gpeer", "--network", "gb", image, "sleep", "300");
        assertThat(lookup("gpeer", "gv")).isEqualTo(onGb);
    }
}
