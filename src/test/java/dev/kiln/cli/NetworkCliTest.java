package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.network.KilnNetwork;
import dev.kiln.testing.Command;
import dev.kiln.testing.HostHttpServer;
import dev.kiln.testing.NetworkLeftovers;
import dev.kiln.testing.NetworkTests;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The kiln network as a user drives it, with real namespaces, a real bridge, real iptables rules and the CNI
 * reference plugins: published ports answer on 127.0.0.1, sandboxes reach each other, {@code --network none} has
 * loopback only, and nothing (veth, namespace, iptables rule, IPAM lease) outlives {@code rm} or a failed start.
 * The test's kiln root gets its own bridge and /24 (see {@link KilnNetwork}); the bridge is deleted at the end.
 */
class NetworkCliTest {

    @TempDir
    static Path root;
    static KilnRun kiln;
    static final String IMAGE = "kiln-test/net-busybox:1";
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    @BeforeAll
    static void image() throws Exception {
        Command.require("runc", "runc");
        Command.require("iptables-save", "iptables");
        NetworkTests.requireCniPlugins();
        kiln = new KilnRun(root);
        kiln.importBusybox(IMAGE, java.util.Map.of("www/index.html", "hello from kiln\n"));
    }

    @AfterAll
    static void stop() {
        if (kiln == null) {
            return;
        }
        kiln.close(); // every sandbox goes first; the test daemon deletes its root's bridges
    }

    @Test
    void publishedPortAnswersOnLoopbackAndRmLeavesNothing() throws Exception {
        List<String> rulesBefore = iptables();
        int hostPort = freePort();
        String id = kiln.ok("run", "-d", "-p", hostPort + ":8080", IMAGE, "httpd", "-f", "-p", "8080", "-h", "/www")
                .out().strip();
        JsonNode net = inspect(id).path("NetworkSettings");
        String ip = net.path("IPAddress").asText();
        assertThat(ip).matches("10\\.\\d+\\.\\d+\\.\\d+");
        assertThat(net.path("Ports").path("8080/tcp").path(0).path("HostPort").asText())
                .isEqualTo(Integer.toString(hostPort));
        assertThat(kiln.ok("port", id).out()).isEqualTo("8080/tcp -> 0.0.0.0:" + hostPort + "\n");
        assertThat(kiln.ok("port", id, "8080").out()).isEqualTo("0.0.0.0:" + hostPort + "\n");
        assertThat(kiln.ok("ps").out()).as("ps shows the published port as Docker's PORTS column")
                .contains("0.0.0.0:" + hostPort + "->8080/tcp");

        assertThat(get("http://127.0.0.1:" + hostPort + "/")).isEqualTo("hello from kiln\n");
        assertThat(get("http://" + ip + ":8080/")).isEqualTo("hello from kiln\n");
        assertThat(kiln.ok("exec", id, "cat", "/etc/hosts").out()).contains(ip + "\t" + id.substring(0, 12));
        assertThat(kiln.ok("exec", id, "ls", "/sys/class/net").out().lines().toList())
                .containsExactlyInAnyOrder("eth0", "lo");
        String netns = "kiln-" + id.substring(0, 12);
        assertThat(Path.of("/var/run/netns", netns)).exists();
        assertThat(leases()).contains(ip);
        assertThat(iptables()).anyMatch(l -> l.contains(id) || l.contains(ip));

        kiln.ok("rm", "-f", id);
        assertNothingLeft(id, ip, rulesBefore);
    }

    @Test
    void randomHostPortAndTwoSandboxesReachEachOther() throws Exception {
        String a = kiln.ok("run", "-d", "-p", "8080", IMAGE, "httpd", "-f", "-p", "8080", "-h", "/www").out().strip();
        String b = kiln.ok("run", "-d", "--network", "kiln", IMAGE, "sleep", "60").out().strip();
        try {
            String port = kiln.ok("port", a, "8080/tcp").out().strip();
            assertThat(port).startsWith("0.0.0.0:");
            int hostPort = Integer.parseInt(port.substring("0.0.0.0:".length()));
            assertThat(hostPort).isPositive();
            assertThat(get("http://127.0.0.1:" + hostPort + "/")).isEqualTo("hello from kiln\n");

            String ipA = inspect(a).path("NetworkSettings").path("IPAddress").asText();
            String ipB = inspect(b).path("NetworkSettings").path("IPAddress").asText();
            assertThat(ipB).isNotEqualTo(ipA).isNotEmpty();
            // busybox's static wget crashes in glibc's NSS even for numeric addresses; nc speaks HTTP/1.0 instead
            assertThat(kiln.ok("exec", b, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 " + ipA + " 8080")
                    .out()).startsWith("HTTP/1.").endsWith("hello from kiln\n");
        } finally {
            kiln.ok("rm", "-f", a, b);
        }
    }

    @Test
    void networkNoneHasOnlyLoopbackAndTheDefaultIsTheKilnBridge() {
        assertThat(kiln.ok("run", "--rm", "--network", "none", IMAGE, "ls", "/sys/class/net").out()).isEqualTo("lo\n");
        assertThat(kiln.ok("run", "--rm", IMAGE, "ls", "/sys/class/net").out()).isEqualTo("eth0\nlo\n");
        if (Command.which("runsc") != null) {
            List<String> links = kiln.ok("run", "--rm", "--isolation", "gvisor", "--network", "none", IMAGE, "ip", "-o",
                    "link").out().lines().toList();
            assertThat(links).as("gvisor --network none").singleElement().asString().contains(": lo:");
        }
        String id = kiln.ok("create", IMAGE, "true").out().strip();
        assertThat(inspect(id).path("NetworkSettings").path("IPAddress").asText()).isEmpty();
        assertThat(inspect(id).path("HostConfig").path("NetworkMode").asText()).isEqualTo("kiln");
        kiln.ok("rm", id);
    }

    @Test
    void gvisorPublishesPortsAndReachesTheHost() throws Exception {
        Command.require("runsc", "runsc");
        List<String> rulesBefore = iptables();
        int hostPort = freePort();
        String id = kiln.ok("run", "-d", "--isolation", "gvisor", "-p", hostPort + ":8080", IMAGE,
                "httpd", "-f", "-p", "8080", "-h", "/www").out().strip();
        String ip = inspect(id).path("NetworkSettings").path("IPAddress").asText();
        try {
            assertThat(get("http://127.0.0.1:" + hostPort + "/")).isEqualTo("hello from kiln\n");
            String gateway = inspect(id).path("NetworkSettings").path("Gateway").asText();
            try (var server = new HostHttpServer(gateway)) {
                assertThat(kiln.ok("exec", id, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 " + gateway
                        + " " + server.port()).out()).startsWith("HTTP/1.").endsWith("hello from the host\n");
            }
        } finally {
            kiln.ok("rm", "-f", id);
        }
        assertNothingLeft(id, ip, rulesBefore);
    }

    @Test
    void hostNetworkDnsAndAddHost() {
        String hostNetns = Command.run("readlink", "/proc/self/ns/net");
        assertThat(kiln.ok("run", "--rm", "--network", "host", IMAGE, "readlink", "/proc/self/ns/net").out())
                .as("the host's network namespace").isEqualTo(hostNetns);
        assertThat(kiln.ok("run", "--rm", IMAGE, "readlink", "/proc/self/ns/net").out()).isNotEqualTo(hostNetns);
        KilnRun.Result gvisor = kiln.kiln("run", "--rm", "--isolation", "gvisor", "--network", "host", IMAGE, "true");
        assertThat(gvisor.exitCode()).isEqualTo(125);
        assertThat(gvisor.err().lines().toList()).singleElement().asString()
                .contains("--network host is only for the container isolation");

        String out = kiln.ok("run", "--rm", "--dns", "192.0.2.53", "--dns-search", "corp.example", "--add-host",
                "db:192.0.2.7", IMAGE, "sh", "-c", "cat /etc/resolv.conf /etc/hosts").out();
        assertThat(out).contains("search corp.example\nnameserver 192.0.2.53\n", "192.0.2.7\tdb\n");
        for (List<String> bad : List.of(List.of("--dns", "not-an-ip"), List.of("--add-host", "db"),
                List.of("--add-host", "db:nowhere"), List.of("--network", "nosuchnet"))) {
            List<String> args = new java.util.ArrayList<>(List.of("run", "--rm"));
            args.addAll(bad);
            args.addAll(List.of(IMAGE, "true"));
            KilnRun.Result r = kiln.kiln(args.toArray(String[]::new));
            assertThat(r.exitCode()).as(bad.toString()).isEqualTo(125);
            assertThat(r.err().lines().toList()).as(bad.toString()).hasSize(1);
        }
    }

    @Test
    void badSpecsAndPortConflictsFailWithOneLineAndLeaveNothing() throws Exception {
        List<String> rulesBefore = iptables();
        for (String bad : List.of("abc", "70000:80", "1.2.3:80:80", "80:0")) {
            KilnRun.Result r = kiln.kiln("run", "--rm", "-p", bad, IMAGE, "true");
            assertThat(r.exitCode()).as(bad).isEqualTo(125);
            assertThat(r.err().lines().toList()).as(bad).singleElement().asString().contains("invalid -p");
        }
        KilnRun.Result none = kiln.kiln("run", "--rm", "--network", "none", "-p", "80", IMAGE, "true");
        assertThat(none.exitCode()).isEqualTo(125);
        assertThat(none.err().lines().toList()).singleElement().asString().contains("--network none");
        try (ServerSocket taken = new ServerSocket(0)) {
            KilnRun.Result r = kiln.kiln("run", "--rm", "-p", taken.getLocalPort() + ":8080", IMAGE, "true");
            assertThat(r.exitCode()).isEqualTo(125);
            assertThat(r.err().lines().toList()).singleElement().asString().contains("already allocated");
        }
        // a conflict found at start (the port was taken after create): the start fails, nothing is left behind
        int port = freePort();
        String id = kiln.ok("create", "-p", port + ":8080", IMAGE, "httpd", "-f", "-p", "8080").out().strip();
        try (ServerSocket taken = new ServerSocket(port)) {
            KilnRun.Result r = kiln.kiln("start", id);
            assertThat(r.exitCode()).isEqualTo(125);
            assertThat(r.err().lines().toList()).singleElement().asString().contains("already allocated");
        }
        assertThat(Path.of("/var/run/netns", "kiln-" + id.substring(0, 12))).doesNotExist();
        kiln.ok("rm", id);
        assertThat(kiln.kiln("ps", "-a", "-q").out()).isEmpty();
        assertNothingLeft(id, null, rulesBefore);
    }

    @Test
    void aDaemonRestartCleansUpSandboxesThatDiedMeanwhile() throws Exception {
        List<String> rulesBefore = iptables();
        String id = kiln.ok("run", "-d", "-p", "8080", IMAGE, "httpd", "-f", "-p", "8080", "-h", "/www").out().strip();
        JsonNode inspected = inspect(id);
        String ip = inspected.path("NetworkSettings").path("IPAddress").asText();
        long shim = inspected.path("State").path("Pid").asLong();
        assertThat(leases()).contains(ip);
        // kilnd goes away, and while it is down the sandbox's shim dies with it (a crash of the whole supervisor)
        kiln.stopDaemon();
        Command.run("kill", "-9", Long.toString(shim));
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (ProcessHandle.of(shim).map(ProcessHandle::isAlive).orElse(false) && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertThat(Path.of("/var/run/netns", "kiln-" + id.substring(0, 12))).exists();
        kiln.startDaemon(); // reconciles at start
        assertThat(inspect(id).path("State").path("Status").asText()).isEqualTo("exited");
        assertNothingLeft(id, ip, rulesBefore);
        kiln.ok("rm", id);
    }

    // ---- helpers ----

    static void assertNothingLeft(String id, String ip, List<String> rulesBefore) {
        NetworkLeftovers.assertNothingLeft(root.resolve("store"), kiln.kiln("ps", "-q").out().isBlank(), id, ip,
                rulesBefore);
    }

    static List<String> iptables() {
        return NetworkLeftovers.iptables();
    }

    static List<String> leases() {
        return NetworkLeftovers.leases(root.resolve("store"));
    }

    static String get(String url) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        Exception last = null;
        while (System.nanoTime() < deadline) {
            try {
                HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(url))
                        .timeout(Duration.ofSeconds(3)).build(), HttpResponse.BodyHandlers.ofString());
                return r.body();
            } catch (IOException e) {
                last = e;
                Thread.sleep(100);
            }
        }
        throw new AssertionError("no answer from " + url, last);
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static JsonNode inspect(String id) {
        try {
            return new ObjectMapper().readTree(kiln.ok("inspect", id).out()).path(0);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
