package dev.kiln.isolation.vm;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.testing.Command;
import dev.kiln.isolation.vm.jail.JailRecord;
import dev.kiln.isolation.vm.jail.VmmJail;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The Firecracker driver: every request it builds is checked against Firecracker's own API definition
 * (/work/shared/specs/firecracker-api.yaml, Swagger 2.0); the real VM boot runs only where the firecracker binary and
 * a usable /dev/kvm exist, and skips with exactly what is missing elsewhere. No fake Firecracker.
 */
class FirecrackerTest {

    static final Path API_DEFINITION = Path.of(System.getProperty("kiln.firecracker.api",
            "/work/shared/specs/firecracker-api.yaml"));
    static SwaggerSchema api;

    @TempDir
    Path dir;

    @BeforeAll
    static void loadApiDefinition() throws IOException {
        Assumptions.assumeTrue(Files.isRegularFile(API_DEFINITION), "Firecracker's API definition " + API_DEFINITION
                + " is missing (pass -Dkiln.firecracker.api=PATH)");
        api = SwaggerSchema.load(API_DEFINITION);
    }

    /** A sandbox on the kiln bridge, as GuestNic.of makes it from the CNI attachment. */
    static final GuestNic BRIDGED = new GuestNic("02:42:0a:58:00:07", "10.88.0.7", 16, "10.88.0.1", 1500,
            Path.of("/var/run/netns/kiln-abc123"), List.of());

    static FirecrackerCommand vm(int cpus) {
        return vm(cpus, BRIDGED);
    }

    static FirecrackerCommand vm(int cpus, GuestNic nic) {
        return new FirecrackerCommand("kiln-abc123", Path.of("/var/lib/kiln/kernels/6.1-x/vmlinux"),
                Path.of("/var/lib/kiln/kernels/6.1-y/initramfs.cpio"), Path.of("/var/lib/kiln/vm-disks/i.erofs"),
                Path.of("/var/lib/kiln/sandboxes/abc/disk.ext4"), 512, cpus, nic);
    }

    @Test
    void everyRequestTheDriverBuildsMatchesTheApiDefinition() {
        List<FirecrackerApi.Request> all = new ArrayList<>();
        for (int cpus : new int[]{1, 2, 3, 64}) all.addAll(vm(cpus).requests());
        all.addAll(vm(1, null).requests()); // --network none: no card
        all.add(FirecrackerApi.networkInterface("net0", "tap0", "02:42:0a:58:00:07", 0)); // MTU left to the guest
        all.add(FirecrackerApi.networkInterface("net0", "tap0", "02:42:0a:58:00:07", 9000));
        all.add(FirecrackerApi.bootSource(Path.of("/k/vmlinux"), "console=ttyS0", null));
        all.add(FirecrackerApi.action(FirecrackerApi.Action.SendCtrlAltDel));
        all.add(FirecrackerApi.describeInstance());
        // pause, checkpoint and restore (FirecrackerCheckpoint, docs/checkpoint.md)
        all.add(FirecrackerApi.vmState(true));
        all.add(FirecrackerApi.vmState(false));
        all.add(FirecrackerApi.snapshotCreate(Path.of(FirecrackerCommand.CHECKPOINT_STATE),
                Path.of(FirecrackerCommand.CHECKPOINT_MEM)));
        all.addAll(vm(2).restoreRequests(Path.of("/c/state"), Path.of("/c/mem")));
        all.addAll(vm(1, null).restoreRequests(Path.of("/c/state"), Path.of("/c/mem")));
        // a vm-snapshot's template and its save (FirecrackerSnapshot, docs/vm.md "On Firecracker")
        all.addAll(vm(1, null).templateRequests(false));
        all.addAll(vm(1, null).templateRequests(true));
        all.addAll(FirecrackerCommand.saveRequests());
        for (FirecrackerApi.Request r : all) {
            assertThat(api.check(r.method(), r.path(), r.body())).as(r + " against Firecracker API " + api.version())
                    .isEmpty();
        }
        System.out.println("checked " + all.size() + " requests against Firecracker API " + api.version());
    }

    @Test
    void theBootSequenceConfiguresThenStarts() {
        List<FirecrackerApi.Request> r = vm(2).requests();
        assertThat(r).extracting(q -> q.method() + " " + q.path()).containsExactly("PUT /machine-config",
                "PUT /boot-source", "PUT /drives/image", "PUT /drives/rw", "PUT /network-interfaces/net0",
                "PUT /vsock", "PUT /actions");
        assertThat(r).extracting(q -> api.bodyDefinition(q.method(), q.path())).containsExactly("MachineConfiguration",
                "BootSource", "Drive", "Drive", "NetworkInterface", "Vsock", "InstanceActionInfo");
        assertThat(r.get(1).body().path("kernel_image_path").asText()).endsWith("/vmlinux");
        assertThat(r.get(1).body().path("initrd_path").asText()).endsWith("/initramfs.cpio");
        assertThat(r.get(2).body().path("is_read_only").asBoolean()).isTrue();
        assertThat(r.get(3).body().path("is_read_only").asBoolean()).isFalse();
        // the TAP GuestNic makes in the sandbox's namespace (Firecracker runs there), the veth's MAC for the guest
        assertThat(r.get(4).body().path("host_dev_name").asText()).isEqualTo(GuestNic.TAP);
        assertThat(r.get(4).body().path("guest_mac").asText()).isEqualTo(BRIDGED.mac());
        assertThat(r.get(4).body().path("mtu").asInt()).isEqualTo(1500);
        assertThat(r.get(5).body().path("uds_path").asText()).isEqualTo(FirecrackerCommand.VSOCK_SOCKET);
        assertThat(r.get(5).body().path("guest_cid").asInt()).isEqualTo(FirecrackerCommand.GUEST_CID);
        assertThat(r.get(6).body().path("action_type").asText()).isEqualTo("InstanceStart");
        assertThat(vm(2, null).requests()).extracting(FirecrackerApi.Request::path)
                .doesNotContain("/network-interfaces/net0");
        assertThat(FirecrackerApi.machineConfig(3, 256).body().path("vcpu_count").asInt()).isEqualTo(4); // 1 or even
        assertThat(vm(1).argv()).containsExactly("firecracker", "--api-sock", "run/firecracker.sock", "--id",
                "kiln-abc123");
        assertThatThrownBy(() -> vm(1, new GuestNic("02:00:00:00:00:01", "10.0.2.15", 24, "10.0.2.2", 1500, null,
                List.of()))).as("Firecracker has no slirp").isInstanceOf(IllegalArgumentException.class);
    }

    /**
     * A restore is the load on a Firecracker given nothing else (the spec: "Only accepted on a fresh Firecracker
     * process"), then only what the spec accepts after boot: the drives re-pointed, the VM resumed; the memory from a
     * file, the VM loaded paused, the card on this sandbox's TAP, each field the spec's own.
     */
    @Test
    void theRestoreLoadsFirstThenRepointsTheDrivesThenResumes() {
        Path state = Path.of("/var/lib/kiln/sandboxes/abc/checkpoints/c1/state");
        Path mem = Path.of("/var/lib/kiln/sandboxes/abc/checkpoints/c1/mem");
        List<FirecrackerApi.Request> r = vm(2).restoreRequests(state, mem);
        assertThat(r).extracting(q -> q.method() + " " + q.path()).containsExactly("PUT /snapshot/load",
                "PATCH /drives/image", "PATCH /drives/rw", "PATCH /vm");
        assertThat(r).extracting(q -> api.bodyDefinition(q.method(), q.path())).containsExactly("SnapshotLoadParams",
                "PartialDrive", "PartialDrive", "Vm");
        assertThat(api.phase("PUT", "/snapshot/load")).isEqualTo("pre-boot");
        assertThat(r.subList(1, r.size())).extracting(q -> api.phase(q.method(), q.path()))
                .as("after the load, nothing that is pre-boot only").doesNotContain("pre-boot");
        assertThat(vm(2).requests()).extracting(FirecrackerApi.Request::path).as("a boot loads nothing")
                .doesNotContain("/snapshot/load");

        var load = r.get(0).body();
        assertThat(load.path("snapshot_path").asText()).isEqualTo(state.toString());
        assertThat(load.path("mem_backend").path("backend_type").asText()).isEqualTo("File");
        assertThat(load.path("mem_backend").path("backend_path").asText()).isEqualTo(mem.toString());
        assertThat(load.has("mem_file_path")).as("exactly one of the two mem_* fields").isFalse();
        assertThat(load.path("resume_vm").isBoolean()).isTrue();
        assertThat(load.path("resume_vm").asBoolean()).as("resumed only after the drives").isFalse();
        assertThat(load.path("clock_realtime").asBoolean()).isTrue();
        assertThat(load.path("vsock_override").path("uds_path").asText()).isEqualTo(FirecrackerCommand.VSOCK_SOCKET);
        // the card's id is the boot's, its TAP the one GuestNic makes in the sandbox's namespace
        String iface = vm(2).requests().stream().filter(q -> q.path().startsWith("/network-interfaces/"))
                .findFirst().orElseThrow().body().path("iface_id").asText();
        assertThat(load.path("network_overrides")).hasSize(1);
        assertThat(load.path("network_overrides").get(0).path("iface_id").asText()).isEqualTo(iface);
        assertThat(load.path("network_overrides").get(0).path("host_dev_name").asText()).isEqualTo(GuestNic.TAP);
        assertThat(vm(1, null).restoreRequests(state, mem).get(0).body().has("network_overrides")).isFalse();

        assertThat(r.get(1).body().path("path_on_host").asText()).isEqualTo("/var/lib/kiln/vm-disks/i.erofs");
        assertThat(r.get(2).body().path("path_on_host").asText()).isEqualTo("/var/lib/kiln/sandboxes/abc/disk.ext4");
        assertThat(r.get(3).body().path("state").asText()).isEqualTo("Resumed");

        var create = FirecrackerApi.snapshotCreate(Path.of(FirecrackerCommand.CHECKPOINT_STATE),
                Path.of(FirecrackerCommand.CHECKPOINT_MEM));
        assertThat(api.bodyDefinition(create.method(), create.path())).isEqualTo("SnapshotCreateParams");
        assertThat(api.phase(create.method(), create.path())).isEqualTo("post-boot");
        assertThat(create.body().path("snapshot_type").asText()).isEqualTo("Full");
        assertThat(FirecrackerApi.vmState(true).body().path("state").asText()).isEqualTo("Paused");
        assertThat(api.check("PUT", "/vm", FirecrackerApi.vmState(true).body())).as("the spec's /vm is PATCH")
                .containsExactly("/vm has no PUT");
    }

    /** kiln-init picks its transport from the kernel command line (docs/guest-protocol.md); QEMU's carries none. */
    @Test
    void theKernelCommandLineSelectsTheVsockChannel() {
        String args = vm(1).requests().get(1).body().path("boot_args").asText();
        assertThat(args.split(" ")).contains("kiln.channel=vsock:" + FirecrackerCommand.CONTROL_PORT, "console=ttyS0",
                "reboot=k", "panic=-1", "pci=off", "kiln.disks=fs"); // disks by filesystem: Firecracker has no serials
        assertThat(FirecrackerCommand.controlSocket()).isEqualTo("run/vsock.sock_1024");
        assertThat(new QemuCommand(Path.of("/k"), Path.of("/i"), Path.of("/a"), Path.of("/b"), 512, 1, false, 0,
                List.of()).cmdline()).doesNotContain("kiln.channel").doesNotContain("kiln.disks");
    }

    /** What the relay reads (--api-requests): each request's HTTP bytes, NUL-terminated, in the boot order. */
    @Test
    void theRelaysRequestFileIsTheBootSequenceNulTerminated() throws IOException {
        List<FirecrackerApi.Request> r = vm(2).requests();
        byte[] script = FirecrackerApi.script(r);
        assertThat(script[script.length - 1]).isZero();
        String[] parts = new String(script, 0, script.length - 1, StandardCharsets.US_ASCII).split("\0", -1);
        assertThat(parts).hasSize(r.size());
        for (int i = 0; i < parts.length; i++) {
            assertThat(parts[i]).isEqualTo(new String(FirecrackerApi.encode(r.get(i)), StandardCharsets.US_ASCII));
        }
        assertThat(parts[parts.length - 1]).startsWith("PUT /actions HTTP/1.1\r\n").endsWith("InstanceStart\"}");
    }

    @Test
    void theSchemaCheckerCatchesWhatFirecrackerWouldRefuse() {
        ObjectMapper json = new ObjectMapper();
        ObjectNode drive = (ObjectNode) FirecrackerApi.drive("rw", Path.of("/d"), false).body().deepCopy();
        drive.remove("is_root_device");
        drive.put("readonly", true);
        drive.put("drive_id", 7);
        assertThat(api.check("PUT", "/drives/rw", drive)).containsExactlyInAnyOrder(
                "body: required property is_root_device is missing", "body: unknown property readonly",
                "body.drive_id: expected a string, got NUMBER");
        assertThat(api.check("PUT", "/actions", json.createObjectNode().put("action_type", "Reboot")))
                .containsExactly("body.action_type: \"Reboot\" is not one of [\"FlushMetrics\",\"InstanceStart\",\"SendCtrlAltDel\"]");
        assertThat(api.check("PUT", "/vsock", json.createObjectNode().put("guest_cid", 2).put("uds_path", "v")))
                .containsExactly("body.guest_cid: 2 is below the minimum 3");
        assertThat(api.check("PUT", "/no-such-thing", json.createObjectNode())).containsExactly(
                "no path /no-such-thing in the API definition");
        assertThat(api.check("PUT", "/boot-source", null)).containsExactly("PUT /boot-source needs a body");
    }

    @Test
    void requestsAreHttp11WithALengthAndResponsesCarryTheFaultMessage() throws IOException {
        FirecrackerApi.Request r = FirecrackerApi.action(FirecrackerApi.Action.InstanceStart);
        String wire = new String(FirecrackerApi.encode(r), StandardCharsets.US_ASCII);
        String body = "{\"action_type\":\"InstanceStart\"}";
        assertThat(wire).startsWith("PUT /actions HTTP/1.1\r\nHost: localhost\r\n")
                .contains("Content-Type: application/json\r\n", "Content-Length: " + body.length() + "\r\n")
                .endsWith("\r\n\r\n" + body);
        assertThat(new String(FirecrackerApi.encode(FirecrackerApi.describeInstance()), StandardCharsets.US_ASCII))
                .startsWith("GET / HTTP/1.1\r\n").doesNotContain("Content-Length").endsWith("\r\n\r\n");

        String fault = "{\"fault_message\":\"Invalid kernel path\"}";
        FirecrackerApi.Response resp = FirecrackerApi.decode(new ByteArrayInputStream(("HTTP/1.1 400 \r\n"
                + "Server: Firecracker API\r\nContent-Length: " + fault.length() + "\r\n\r\n" + fault)
                .getBytes(StandardCharsets.US_ASCII)));
        assertThat(resp.status()).isEqualTo(400);
        assertThat(resp.body().path("fault_message").asText()).isEqualTo("Invalid kernel path");
        assertThat(FirecrackerApi.decode(new ByteArrayInputStream("HTTP/1.1 204 \r\n\r\n".getBytes(StandardCharsets.US_ASCII)))
                .body().isEmpty()).isTrue();
    }

    @Test
    void noFirecrackerListeningIsAClearError() {
        FirecrackerApi client = new FirecrackerApi(dir.resolve("firecracker.sock"), Duration.ofSeconds(2));
        assertThatThrownBy(() -> client.send(FirecrackerApi.describeInstance())).isInstanceOf(KilnException.class)
                .hasMessageStartingWith("cannot talk to firecracker on " + dir.resolve("firecracker.sock") + " (GET /)");
    }

    /** The API socket is in the VMM's directory: a link the VMM put there is not followed to another host socket. */
    @Test
    void aLinkInPlaceOfTheApiSocketIsNotFollowedToAnotherSocket() throws Exception {
        Path host = dir.resolve("kilnd.sock"); // stands for a root-only socket of the host
        try (java.nio.channels.ServerSocketChannel server = java.nio.channels.ServerSocketChannel.open(
                java.net.StandardProtocolFamily.UNIX)) {
            server.bind(java.net.UnixDomainSocketAddress.of(host));
            server.configureBlocking(false);
            Files.createSymbolicLink(dir.resolve("firecracker.sock"), host);
            FirecrackerApi client = new FirecrackerApi(dir.resolve("firecracker.sock"), Duration.ofSeconds(2));
            assertThatThrownBy(() -> client.send(FirecrackerApi.vmState(true))).isInstanceOf(KilnException.class)
                    .hasMessageStartingWith("cannot talk to firecracker on " + dir.resolve("firecracker.sock"));
            assertThat(server.accept()).as("a connection reached the socket the link names").isNull();

            Files.delete(dir.resolve("firecracker.sock"));
            Files.createLink(dir.resolve("firecracker.sock"), host); // root may: the VMM may not (protected_hardlinks)
            try (java.nio.channels.SocketChannel ignored = connectedThroughTheClient(client, server)) {
                assertThat(ignored).as("the socket itself is reached as before").isNotNull();
            }
        }
    }

    private static java.nio.channels.SocketChannel connectedThroughTheClient(FirecrackerApi client,
            java.nio.channels.ServerSocketChannel server) throws Exception {
        Thread t = Thread.ofVirtual().start(() -> {
            try {
                client.send(FirecrackerApi.describeInstance());
            } catch (RuntimeException e) {
                // the test's server answers nothing: the client times out
            }
        });
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        java.nio.channels.SocketChannel c;
        while ((c = server.accept()) == null && System.nanoTime() < deadline) Thread.sleep(10);
        if (c != null) c.close();
        t.join();
        return c;
    }

    @Test
    void theRuntimeSaysWhatThisHostLacks() {
        List<String> missing = Firecracker.missing();
        Assumptions.assumeFalse(missing.isEmpty(), "firecracker and /dev/kvm are both here");
        assertThatThrownBy(() -> new Firecracker(Map.of()).require()).isInstanceOf(KilnException.class)
                .hasMessageStartingWith("the firecracker runtime needs the firecracker binary and /dev/kvm: "
                        + String.join("; ", missing));
    }

    /** A real Firecracker boots the host's kernel (as vmlinux) with a busybox initramfs that prints "hi". */
    @Test
    @Tag("slow")
    void aRealFirecrackerBootsTheVmlinuxAndRunsEchoHi() throws Exception {
        List<String> missing = Firecracker.missing();
        Assumptions.assumeTrue(missing.isEmpty(), String.join("; ", missing));
        Path busybox = Command.require("busybox", "busybox-static");
        Kernel kernel = VmlinuxTest.hostKernel();
        Path vmlinux = Vmlinux.ensure(kernel, dir.resolve("kernels"));
        Path tree = Files.createDirectories(dir.resolve("initramfs/bin"));
        Files.copy(busybox, tree.resolve("busybox"));
        Files.writeString(dir.resolve("initramfs/init"), "#!/bin/busybox sh\n/bin/busybox echo hi\n"
                + "/bin/busybox poweroff -f\n");
        dir.resolve("initramfs/init").toFile().setExecutable(true);
        Path initrd = dir.resolve("initramfs.cpio");
        Command.run("sh", "-c", "cd " + dir.resolve("initramfs") + " && find . | cpio -o -H newc > " + initrd);
        Path empty = Files.write(dir.resolve("empty.img"), new byte[1 << 20]);

        Path vmDir = Files.createDirectories(dir.resolve("vm"));
        Files.createDirectories(vmDir.resolve(VmmJail.RUN));
        FirecrackerCommand fc = new FirecrackerCommand("kiln-test", vmlinux, initrd, empty, empty, 256, 1, null);
        Process p = new ProcessBuilder(fc.argv()).directory(vmDir.toFile()).redirectErrorStream(true)
                .redirectOutput(vmDir.resolve("console.log").toFile()).start();
        try {
            FirecrackerApi client = new FirecrackerApi(vmDir.resolve(FirecrackerCommand.API_SOCKET), Duration.ofSeconds(5));
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (!Files.exists(vmDir.resolve(FirecrackerCommand.API_SOCKET)) && System.nanoTime() < deadline) Thread.sleep(10);
            assertThat(client.send(FirecrackerApi.describeInstance()).body().path("state").asText()).isEqualTo("Not started");
            client.configure(List.of(FirecrackerApi.machineConfig(1, 256),
                    FirecrackerApi.bootSource(vmlinux, "console=ttyS0 reboot=k panic=-1 pci=off rdinit=/init", initrd),
                    FirecrackerApi.action(FirecrackerApi.Action.InstanceStart)));
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("firecracker exits after the guest powers off").isTrue();
            assertThat(Files.readString(vmDir.resolve("console.log"))).contains("hi");
        } finally {
            p.destroyForcibly();
        }
    }
}
