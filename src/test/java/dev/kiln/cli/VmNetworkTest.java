package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.Resources;
import dev.kiln.isolation.SandboxNetwork;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.ExitStatus;
import dev.kiln.isolation.vm.VmIsolator;
import dev.kiln.isolation.vm.VmOptions;
import dev.kiln.network.SlirpNetwork;
import dev.kiln.testing.BusyboxRootfs;
import dev.kiln.testing.Command;
import dev.kiln.testing.HostHttpServer;
import dev.kiln.testing.NetworkTests;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.kiln.cli.NetworkCliTest.freePort;
import static dev.kiln.cli.NetworkCliTest.get;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Networking of the vm isolation as a user drives it: real QEMU (TCG here), the host's kernel, kiln-init, the CNI
 * plugins. On the kiln bridge the guest owns the veth's address through a TAP tied to it with tc mirred, so a published
 * port answers on 127.0.0.1 and the guest reaches the host's gateway address; {@code --network none} has loopback only;
 * {@code --network user} (QEMU's slirp) publishes through hostfwd; nothing outlives {@code rm -f}; a guest that cannot
 * configure its card says why. Four VM boots in all.
 */
@Tag("slow")
class VmNetworkTest {

    @TempDir
    static Path root;
    static KilnRun kiln;
    static final String IMAGE = "kiln-test/vmnet-busybox:1";

    @BeforeAll
    static void image() throws Exception {
        dev.kiln.testing.VmTests.require();
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
        kiln.close(); // every sandbox goes first; the test daemon deletes its root's bridge
    }

    @Test
    void bridgedVmPublishesAPortReachesTheHostAndRmLeavesNothing() throws Exception {
        List<String> rulesBefore = NetworkCliTest.iptables();
        int hostPort = freePort();
        // the default network of a VM is the kiln bridge, as for the other isolations
        String id = kiln.ok("run", "-d", "--isolation", "vm", "-p", hostPort + ":8080", IMAGE,
                "httpd", "-f", "-p", "8080", "-h", "/www").out().strip();
        JsonNode net = inspect(id).path("NetworkSettings");
        String ip = net.path("IPAddress").asText();
        String gateway = net.path("Gateway").asText();
        String netns = "kiln-" + id.substring(0, 12);
        try {
            assertThat(ip).matches("10\\.\\d+\\.\\d+\\.\\d+");
            assertThat(get("http://127.0.0.1:" + hostPort + "/")).isEqualTo("hello from kiln\n");
            assertThat(kiln.ok("port", id).out()).isEqualTo("8080/tcp -> 0.0.0.0:" + hostPort + "\n");

            // the guest owns the veth's address and MAC, with the gateway as its default route
            String guest = kiln.ok("exec", id, "sh", "-c", "ls /sys/class/net; cat /sys/class/net/eth0/address;"
                    + " ip -4 addr show eth0; ip route; cat /etc/hosts").out();
            assertThat(guest).startsWith("eth0\nlo\n" + net.path("MacAddress").asText() + "\n")
                    .contains("inet " + ip + "/", "default via " + gateway + " dev eth0",
                            ip + "\t" + id.substring(0, 12) + "\n");
            // the TAP and its tc redirects live in the sandbox's namespace, none of it in the host's
            assertThat(Command.run("ip", "-n", netns, "-o", "link", "show", "tap0")).contains("tap0");
            assertThat(Command.run("tc", "-n", netns, "filter", "show", "dev", "eth0", "ingress"))
                    .contains("mirred (Egress Redirect to device tap0)");
            assertThat(Path.of("/sys/class/net/tap0")).doesNotExist();

            try (var server = new HostHttpServer(gateway)) {
                // busybox's static wget crashes in glibc's NSS even for numeric addresses; nc speaks HTTP/1.0
                assertThat(kiln.ok("exec", id, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 " + gateway
                        + " " + server.port()).out()).startsWith("HTTP/1.").endsWith(HostHttpServer.BODY);
            }
        } finally {
            kiln.ok("rm", "-f", id);
        }
        assertThat(Path.of("/var/run/netns", netns)).doesNotExist();
        assertThat(Path.of("/sys/class/net/tap0")).doesNotExist();
        dev.kiln.testing.NetworkLeftovers.assertNothingLeft(kiln.store(), idle(), id, ip, rulesBefore);
    }

    @Test
    void networkNoneVmHasOnlyLoopback() {
        assertThat(kiln.ok("run", "--rm", "--isolation", "vm", "--network", "none", IMAGE, "ls", "/sys/class/net")
                .out()).isEqualTo("lo\n");
    }

    @Test
    void userNetworkPublishesThroughQemu() throws Exception {
        int hostPort = freePort();
        String id = kiln.ok("run", "-d", "--isolation", "vm", "--network", "user", "-p", hostPort + ":8080", IMAGE,
                "httpd", "-f", "-p", "8080", "-h", "/www").out().strip();
        try {
            assertThat(get("http://127.0.0.1:" + hostPort + "/")).isEqualTo("hello from kiln\n");
            assertThat(kiln.ok("port", id).out()).isEqualTo("8080/tcp -> 0.0.0.0:" + hostPort + "\n");
            JsonNode net = inspect(id).path("NetworkSettings");
            assertThat(net.path("IPAddress").asText()).isEqualTo("10.0.2.15");
            assertThat(net.path("SandboxKey").asText()).isEmpty(); // no namespace on the user network
            assertThat(kiln.ok("exec", id, "cat", "/etc/resolv.conf").out()).contains("nameserver 10.0.2.3\n");
            // the port is reserved for this sandbox like a bridge's: another one cannot publish it
            KilnRun.Result clash = kiln.kiln("run", "--rm", "-p", hostPort + ":80", IMAGE, "true");
            assertThat(clash.exitCode()).isEqualTo(125);
            assertThat(clash.errLines()).singleElement().asString().contains("already allocated");
        } finally {
            kiln.ok("rm", "-f", id);
        }
        assertThat(Path.of("/var/run/netns", "kiln-" + id.substring(0, 12))).doesNotExist();
    }

    /** No VM boots: refusals with one line, and a start that fails on its port leaves no record behind. */
    @Test
    void badNetworkRequestsFailWithOneLine() throws IOException {
        for (List<String> bad : List.of(List.of("--network", "user"), List.of("--isolation", "vm", "--network", "host"),
                List.of("--isolation", "vm", "--network", "none", "-p", "80"))) {
            List<String> args = new java.util.ArrayList<>(List.of("run", "--rm"));
            args.addAll(bad);
            args.addAll(List.of(IMAGE, "true"));
            KilnRun.Result r = kiln.kiln(args.toArray(String[]::new));
            assertThat(r.exitCode()).as(bad.toString()).isEqualTo(125);
            assertThat(r.errLines()).as(bad.toString()).hasSize(1);
        }
        int port = freePort();
        String id = kiln.ok("create", "--isolation", "vm", "--network", "user", "-p", port + ":8080", IMAGE, "true")
                .out().strip();
        try (ServerSocket taken = new ServerSocket(port)) {
            KilnRun.Result r = kiln.kiln("start", id);
            assertThat(r.exitCode()).isEqualTo(125);
            assertThat(r.errLines()).singleElement().asString().contains("already allocated");
        }
        assertThat(kiln.store().resolve("sandboxes").resolve(id.substring(0, 12)).resolve("network.json"))
                .doesNotExist();
        kiln.ok("rm", id);
    }

    /**
     * The guest's side of a bad network (one boot, driven through the isolator: no flag makes the engine send a bad
     * address): kiln-init refuses the START with its reason, which is the sandbox's one line and exit 125.
     */
    @Test
    void aGuestThatCannotConfigureItsCardFailsWithTheReason() throws Exception {
        Path rootfs = BusyboxRootfs.create(root.resolve("isolator-rootfs"));
        VmIsolator vm = new VmIsolator(VmOptions.defaults(root.resolve("isolator-state")));
        String id = String.format("%064x", System.nanoTime());
        SandboxNetwork user = new SandboxNetwork(SandboxNetwork.Mode.USER, null, "10.0.2.999", 24,
                SlirpNetwork.GATEWAY, "02:00:00:00:00:01", SandboxNetwork.DEFAULT_MTU, null, null, null, null);
        SandboxSpec spec = new SandboxSpec(id, "badnet", "badnet", new ProcessSpec(List.of("true"), List.of(), "/", 0,
                0, List.of(), false, false), rootfs, false, Resources.UNLIMITED, java.util.Map.of(), List.of(),
                root.resolve("isolator-sandboxes").resolve(id), user);
        Files.createDirectories(spec.dir());
        try {
            vm.create(spec);
            ExitStatus status = vm.start(spec, java.time.Duration.ZERO).await(java.time.Duration.ofSeconds(120))
                    .orElseThrow();
            assertThat(status.exitCode()).isEqualTo(125);
            assertThat(Files.readString(spec.dir().resolve("log.json")))
                    .contains("the VM could not start the sandbox: guest: bad START: net \\\"10.0.2.999\\\" is not an IPv4 address");
        } finally {
            vm.cleanup(spec, true);
        }
    }

    private static boolean idle() {
        return kiln.ok("ps", "-q").out().isBlank();
    }

    private static JsonNode inspect(String id) {
        try {
            return new ObjectMapper().readTree(kiln.ok("inspect", id).out()).path(0);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
