package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.network.KilnNetwork;
import dev.kiln.testing.Command;
import dev.kiln.testing.NetworkTests;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * User-defined networks as a user drives them, with real bridges, namespaces, iptables and DNS over UDP: sandboxes on
 * one network find each other by name through kilnd's resolver on the gateway, sandboxes elsewhere do not, other
 * names go to the host's resolver, and {@code network rm} leaves no bridge, rule, lease or file behind.
 */
class UserNetworkTest {

    @TempDir
    static Path root;
    static KilnRun kiln;
    static final String IMAGE = "kiln-test/usernet-busybox:1";

    @BeforeAll
    static void start() throws Exception {
        Command.require("runc", "runc");
        Command.require("iptables-save", "iptables");
        NetworkTests.requireCniPlugins();
        kiln = new KilnRun(root);
        kiln.importBusybox(IMAGE, Map.of("www/index.html", "hello from peer\n"));
    }

    @AfterAll
    static void stop() {
        if (kiln == null) {
            return;
        }
        kiln.removeSandboxes();
        kiln.kiln("network", "prune", "-f");
        kiln.close(); // every sandbox goes first; the test daemon deletes its root's bridges
    }

    @Test
    void sandboxesOnOneNetworkResolveEachOtherAndRmLeavesNothing() throws Exception {
        List<String> rulesBefore = iptables();
        String id = kiln.ok("network", "create", "--label", "team=dns", "appnet").out().strip();
        assertThat(id).matches("[0-9a-f]{64}");
        JsonNode net = networkInspect("appnet");
        String subnet = net.path("IPAM").path("Config").path(0).path("Subnet").asText();
        String gateway = net.path("IPAM").path("Config").path(0).path("Gateway").asText();
        String bridge = "kiln-" + id.substring(0, 8);
        assertThat(net.path("Id").asText()).isEqualTo(id);
        assertThat(net.path("Driver").asText()).isEqualTo("bridge");
        assertThat(net.path("Labels").path("team").asText()).isEqualTo("dns");
        assertThat(net.path("Options").path("com.docker.network.bridge.name").asText()).isEqualTo(bridge);
        assertThat(subnet).matches("10\\.\\d+\\.\\d+\\.0/24")
                .isNotEqualTo(KilnNetwork.forRoot(root.resolve("store")).subnet());
        String prefix = subnet.substring(0, subnet.lastIndexOf(".") + 1);
        assertThat(gateway).isEqualTo(prefix + "1");

        String peer = kiln.ok("run", "-d", "--network", "appnet", "--name", "peer", "--hostname", "peer-host", IMAGE,
                "httpd", "-f", "-p", "8080", "-h", "/www").out().strip();
        String client = kiln.ok("run", "-d", "--network", "appnet", "--name", "client", IMAGE, "sleep", "300").out()
                .strip();
        String peerIp = inspect(peer).path("NetworkSettings").path("IPAddress").asText();
        assertThat(peerIp).startsWith(prefix);
        assertThat(kiln.ok("exec", client, "cat", "/etc/resolv.conf").out()).contains("nameserver " + gateway + "\n");

        for (String name : List.of("peer", "PEER.", "peer-host", peer.substring(0, 12))) {
            assertThat(kiln.ok("exec", client, "busybox", "nslookup", name).out()).as(name)
                    .contains("Address: " + peerIp);
        }
        // the name in an ordinary program (busybox nc → getaddrinfo → resolv.conf → kilnd)
        assertThat(kiln.ok("exec", client, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 peer 8080").out())
                .startsWith("HTTP/1.").endsWith("hello from peer\n");

        // a sandbox on the default network: the host's resolv.conf, no kiln names (Docker's default bridge alike)
        KilnRun.Result outside = kiln.kiln("run", "--rm", IMAGE, "busybox", "nslookup", "peer");
        assertThat(outside.out()).doesNotContain(peerIp);

        // a name no sandbox has goes to the host's resolver: the answer is whatever that resolver says
        String name = "kiln-usernet-test.invalid";
        KilnRun.Result forwarded = kiln.kiln("exec", client, "busybox", "nslookup", name);
        Integer hostRcode = hostResolverRcode(name);
        if (hostRcode == null) {
            assertThat(forwarded.out() + forwarded.err()).as("no upstream answers here").contains("SERVFAIL");
        } else if (hostRcode == 3) {
            assertThat(forwarded.out() + forwarded.err()).contains("NXDOMAIN");
        } else {
            assertThat(forwarded.out() + forwarded.err()).doesNotContain("SERVFAIL");
        }

        JsonNode containers = networkInspect("appnet").path("Containers");
        assertThat(containers.path(peer).path("Name").asText()).isEqualTo("peer");
        assertThat(containers.path(peer).path("IPv4Address").asText()).startsWith(peerIp + "/");
        assertThat(kiln.ok("network", "ls").out()).containsPattern(id.substring(0, 12) + " +appnet +bridge +local");
        assertThat(kiln.ok("network", "ls", "-q").out().lines().toList()).contains(id.substring(0, 12));
        assertThat(kiln.ok("network", "ls", "--format", "json").out()).contains("\"Name\":\"appnet\"");

        KilnRun.Result inUse = kiln.kiln("network", "rm", "appnet");
        assertThat(inUse.exitCode()).isEqualTo(125);
        assertThat(inUse.err().lines().toList()).singleElement().asString().contains("in use").contains("peer")
                .contains("client");
        kiln.ok("stop", "-t", "1", client);
        KilnRun.Result stillInUse = kiln.kiln("network", "rm", "appnet");
        assertThat(stillInUse.exitCode()).as("an exited sandbox could not start again").isEqualTo(125);

        kiln.ok("rm", "-f", peer, client);
        assertThat(kiln.ok("network", "rm", "appnet").out()).isEqualTo("appnet\n");
        assertNetworkGone("appnet", bridge, subnet, rulesBefore);
        assertThat(kiln.kiln("network", "inspect", "appnet").exitCode()).isEqualTo(125);
    }

    @Test
    void gvisorAndContainerSandboxesResolveEachOther() throws Exception {
        Command.require("runsc", "runsc");
        // a subnet kilnd found free, given back explicitly
        kiln.ok("network", "create", "probe");
        String subnet = networkInspect("probe").path("IPAM").path("Config").path(0).path("Subnet").asText();
        kiln.ok("network", "rm", "probe");
        String id = kiln.ok("network", "create", "--subnet", subnet, "--gateway", subnet.replace(".0/24", ".254"),
                "mixnet").out().strip();
        assertThat(networkInspect("mixnet").path("IPAM").path("Config").path(0).path("Gateway").asText())
                .isEqualTo(subnet.replace(".0/24", ".254"));
        String bridge = "kiln-" + id.substring(0, 8);
        List<String> rulesBefore = iptables();
        String g = kiln.ok("run", "-d", "--network", "mixnet", "--isolation", "gvisor", "--name", "gpeer", IMAGE,
                "httpd", "-f", "-p", "8080", "-h", "/www").out().strip();
        String c = kiln.ok("run", "-d", "--network", "mixnet", "--name", "cpeer", IMAGE, "sleep", "300").out().strip();
        try {
            String gIp = inspect(g).path("NetworkSettings").path("IPAddress").asText();
            String cIp = inspect(c).path("NetworkSettings").path("IPAddress").asText();
            assertThat(kiln.ok("exec", c, "busybox", "nslookup", "gpeer").out()).contains("Address: " + gIp);
            assertThat(kiln.ok("exec", g, "busybox", "nslookup", "cpeer").out()).contains("Address: " + cIp);
            assertThat(kiln.ok("exec", c, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 gpeer 8080").out())
                    .endsWith("hello from peer\n");
        } finally {
            kiln.ok("rm", "-f", g, c);
        }
        kiln.ok("network", "rm", "mixnet");
        assertNetworkGone("mixnet", bridge, subnet, rulesBefore);
    }

    @Test
    @org.junit.jupiter.api.Tag("slow")
    void aVmAndAContainerResolveEachOtherAndReachTheHost() throws Exception {
        SandboxCliTest.requireRuntime("vm");
        kiln.ok("network", "create", "vmnet");
        String v = kiln.ok("run", "-d", "--network", "vmnet", "--isolation", "vm", "--name", "vpeer", IMAGE,
                "httpd", "-f", "-p", "8080", "-h", "/www").out().strip();
        String c = kiln.ok("run", "-d", "--network", "vmnet", "--name", "cpeer2", IMAGE,
                "httpd", "-f", "-p", "8080", "-h", "/www").out().strip();
        try {
            String vIp = inspect(v).path("NetworkSettings").path("IPAddress").asText();
            String cIp = inspect(c).path("NetworkSettings").path("IPAddress").asText();
            assertThat(kiln.ok("exec", c, "busybox", "nslookup", "vpeer").out()).contains("Address: " + vIp);
            assertThat(kiln.ok("exec", v, "busybox", "nslookup", "cpeer2").out()).contains("Address: " + cIp);
            String get = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ";
            assertThat(kiln.ok("exec", c, "sh", "-c", get + "vpeer 8080").out()).endsWith("hello from peer\n");
            assertThat(kiln.ok("exec", v, "sh", "-c", get + "cpeer2 8080").out()).endsWith("hello from peer\n");
            String gateway = inspect(c).path("NetworkSettings").path("Gateway").asText();
            try (var host = new dev.kiln.testing.HostHttpServer(gateway)) {
                assertThat(kiln.ok("exec", c, "sh", "-c", get + gateway + " " + host.port()).out())
                        .as("the container reaches a server on the host").endsWith(dev.kiln.testing.HostHttpServer.BODY);
            }
        } finally {
            kiln.ok("rm", "-f", v, c);
            kiln.ok("network", "rm", "vmnet");
        }
    }

    @Test
    void theResolverComesBackWhenKilndRestartsAndFollowsRenamesAndStops() throws Exception {
        kiln.ok("network", "create", "restartnet");
        String a = kiln.ok("run", "-d", "--network", "restartnet", "--name", "ra", IMAGE, "sleep", "300").out().strip();
        String b = kiln.ok("run", "-d", "--network", "restartnet", "--name", "rb", IMAGE, "sleep", "300").out().strip();
        try {
            String ipA = inspect(a).path("NetworkSettings").path("IPAddress").asText();
            kiln.stopDaemon();
            kiln.startDaemon();
            assertThat(kiln.ok("exec", b, "busybox", "nslookup", "ra").out()).contains("Address: " + ipA);
            // the resolver's table (rebuilt above) follows a rename and a stop from then on
            kiln.ok("rename", "ra", "ra-renamed");
            assertThat(kiln.ok("exec", b, "busybox", "nslookup", "ra-renamed").out()).contains("Address: " + ipA);
            assertThat(kiln.kiln("exec", b, "busybox", "nslookup", "ra").out()).doesNotContain(ipA);
            kiln.ok("stop", "-t", "1", a);
            assertThat(kiln.kiln("exec", b, "busybox", "nslookup", "ra-renamed").out()).doesNotContain(ipA);
        } finally {
            kiln.ok("rm", "-f", a, b);
            kiln.ok("network", "rm", "restartnet");
        }
    }

    @Test
    void badRequestsFailWithOneLineAndLeaveNothing() throws Exception {
        Path dir = root.resolve("store/network");
        kiln.ok("network", "create", "dupnet");
        List<String> before = files(dir);
        String hostRoute = Command.run("ip", "-4", "route").lines().map(l -> l.split("\\s+")[0])
                .filter(r -> r.matches("[0-9.]+/(16|24)") && !r.startsWith("10.")).findFirst().orElse(null);
        List<List<String>> bad = new ArrayList<>(List.of(
                List.of("network", "create", "dupnet"),
                List.of("network", "create", "bridge"),
                List.of("network", "create", "host"),
                List.of("network", "create", "bad/name"),
                List.of("network", "create", "--subnet", "10.1.2.3/24", "n1"),
                List.of("network", "create", "--subnet", "300.1.2.0/24", "n1"),
                List.of("network", "create", "--subnet", "fd00::/64", "n1"),
                List.of("network", "create", "--subnet", KilnNetwork.forRoot(root.resolve("store")).subnet(), "n1"),
                List.of("network", "create", "--subnet", networkInspect("dupnet").path("IPAM").path("Config").path(0)
                        .path("Subnet").asText(), "n1"),
                List.of("network", "create", "--subnet", "10.200.0.0/24", "--gateway", "10.201.0.1", "n1"),
                List.of("network", "inspect", "nosuchnet"),
                List.of("network", "rm", "nosuchnet"),
                List.of("network", "rm", "kiln"),
                List.of("run", "--rm", "--network", "nosuchnet", IMAGE, "true")));
        if (hostRoute != null) {
            bad.add(List.of("network", "create", "--subnet", hostRoute, "n1"));
        }
        for (List<String> args : bad) {
            KilnRun.Result r = kiln.kiln(args.toArray(String[]::new));
            assertThat(r.exitCode()).as(args.toString()).isEqualTo(125);
            assertThat(r.err().lines().toList()).as(args.toString()).hasSize(1);
        }
        assertThat(kiln.kiln("network", "create", "dupnet").err()).contains("already exists");
        assertThat(kiln.kiln("network", "inspect", "nosuchnet").err()).contains("not found");
        assertThat(files(dir)).isEqualTo(before);
        kiln.ok("network", "rm", "dupnet");
    }

    // ---- helpers ----

    static void assertNetworkGone(String name, String bridge, String subnet, List<String> rulesBefore) {
        String prefix = subnet.substring(0, subnet.lastIndexOf('.') + 1);
        assertThat(Path.of("/sys/class/net", bridge)).doesNotExist();
        assertThat(iptables()).noneMatch(l -> l.contains(bridge) || l.contains("name: \\\"" + name + "\\\""));
        // other kiln roots (other test runs on this host) add and remove rules meanwhile: only this network's count
        List<String> added = new ArrayList<>(iptables());
        added.removeAll(rulesBefore);
        assertThat(added).as("iptables rules added and not removed").noneMatch(l -> l.contains(" " + prefix));
        Path dir = root.resolve("store/network");
        assertThat(dir.resolve("ipam").resolve(name)).doesNotExist();
        assertThat(dir.resolve(name + ".conflist")).doesNotExist();
        assertThat(dir.resolve(name + ".json")).doesNotExist();
    }

    /** The rcode the host's first resolver gives for an A query of {@code name}; null when it does not answer. */
    static Integer hostResolverRcode(String name) throws IOException {
        String server = Files.readString(Path.of("/etc/resolv.conf")).lines().map(String::strip)
                .filter(l -> l.startsWith("nameserver")).map(l -> l.split("\\s+")[1]).findFirst().orElse(null);
        if (server == null) {
            return null;
        }
        java.io.ByteArrayOutputStream q = new java.io.ByteArrayOutputStream();
        q.writeBytes(new byte[] {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0});
        for (String label : name.split("\\.")) {
            q.write(label.length());
            q.writeBytes(label.getBytes(StandardCharsets.US_ASCII));
        }
        q.writeBytes(new byte[] {0, 0, 1, 0, 1});
        try (DatagramSocket s = new DatagramSocket()) {
            s.setSoTimeout(3000);
            byte[] b = q.toByteArray();
            s.send(new DatagramPacket(b, b.length, new InetSocketAddress(InetAddress.ofLiteral(server), 53)));
            byte[] buf = new byte[1500];
            s.receive(new DatagramPacket(buf, buf.length));
            return buf[3] & 0xF;
        } catch (IOException e) {
            return null;
        }
    }

    static List<String> files(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.map(p -> dir.relativize(p).toString()).filter(p -> !p.startsWith("ipam/kiln")).sorted().toList();
        }
    }

    static List<String> iptables() {
        return dev.kiln.testing.NetworkLeftovers.iptables();
    }

    static JsonNode networkInspect(String name) throws IOException {
        return new ObjectMapper().readTree(kiln.ok("network", "inspect", name).out()).path(0);
    }

    static JsonNode inspect(String id) throws IOException {
        return new ObjectMapper().readTree(kiln.ok("inspect", id).out()).path(0);
    }
}
