package dev.kiln.isolation.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.isolation.vm.jail.JailRecord;
import dev.kiln.isolation.vm.jail.VmmJail;
import dev.kiln.testing.Command;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Firecracker's launch in kiln's jail (docs/vm.md, "Firecracker in the jail"): what the relay is told to bind, that
 * kiln installs no filter of its own, and that every path the API requests name is one the jail binds (so Firecracker,
 * which opens them by path, finds them inside), the requests checked against Firecracker's API definition as in
 * {@link FirecrackerTest}. Firecracker itself cannot run here (no binary, no usable KVM: its boot tests skip); the
 * binary below is only a path the jail binds, never run.
 */
class FirecrackerJailTest {

    private static final int UID = 100_065_001; // in the default vmm-uid-range; owns nothing on this host
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    record Prepared(Vmm.Launch launch, Path vmDir, Path vmlinux, Path initrd, Path image, Path disk, Path binary) {
    }

    /** The files a real start has, under a temporary root laid out as kiln's, 0600 root's as kiln makes them. */
    private Prepared launch(GuestNic nic) throws IOException {
        FirecrackerTest.loadApiDefinition();
        Path kernels = Files.createDirectories(dir.resolve("kernels/6.1"));
        Path vmlinux = Files.write(kernels.resolve("vmlinux"), new byte[]{0x7f, 'E', 'L', 'F'});
        Path initrd = Files.write(kernels.resolve("initramfs.cpio"), new byte[]{1});
        Path image = Files.write(Files.createDirectories(dir.resolve("vm-disks")).resolve("i.erofs"), new byte[]{2});
        Path sandbox = Files.createDirectories(dir.resolve("sandboxes/abc"));
        Path disk = Files.write(sandbox.resolve("disk.ext4"), new byte[]{3});
        for (Path f : List.of(vmlinux, initrd, image, disk)) {
            Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-------"));
        }
        Path binary = Files.writeString(Files.createDirectories(dir.resolve("bin")).resolve("firecracker"),
                "#!/bin/false\n");
        Files.setPosixFilePermissions(binary, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path vmDir = Files.createDirectories(sandbox.resolve("vm"));
        Firecracker fc = new Firecracker(Map.of("firecracker", binary), dir.resolve("kernels"));
        Vmm.Launch launch = fc.launch(new Vmm.Machine("abc", vmlinux, initrd, image, disk, 256, 1, nic, UID), vmDir);
        return new Prepared(launch, vmDir, vmlinux, initrd, image, disk, binary);
    }

    /** vm/jail.mounts as the relay reads it: path → kind. */
    private static Map<Path, String> mounts(Path vmDir) throws IOException {
        Map<Path, String> m = new LinkedHashMap<>();
        for (String line : Files.readAllLines(vmDir.resolve("jail.mounts"))) {
            String[] kv = line.split("\t");
            m.put(Path.of(kv[1]), kv[0]);
        }
        return m;
    }

    /** boot.http as the relay sends it: each request's line and JSON body. */
    private static List<String[]> requests(Path vmDir) throws IOException {
        String script = Files.readString(vmDir.resolve(FirecrackerCommand.REQUESTS_FILE), StandardCharsets.US_ASCII);
        List<String[]> r = new ArrayList<>();
        for (String http : script.substring(0, script.length() - 1).split("\0")) {
            String line = http.substring(0, http.indexOf("\r\n"));
            r.add(new String[]{line, http.substring(http.indexOf("\r\n\r\n") + 4)});
        }
        return r;
    }

    /** The kind of the jail's mount through which {@code p} is reached inside (the same path: binds keep paths). */
    private static String reachedAs(Map<Path, String> mounts, Path p) {
        for (Map.Entry<Path, String> m : mounts.entrySet()) {
            if (p.equals(m.getKey()) || p.startsWith(m.getKey())) return m.getKey().equals(p) ? m.getValue()
                    : m.getValue() + " (under " + m.getKey() + ")";
        }
        return "not in the jail";
    }

    @Test
    void theJailBindsWhatFirecrackerOpensByPathAndInstallsNoFilterOfKilns() throws IOException {
        Prepared p = launch(FirecrackerTest.BRIDGED);
        assertThat(new Firecracker(Map.of()).jails()).isTrue();
        List<String> relay = p.launch().relayOptions();
        VmmJail jail = p.launch().jail();
        assertThat(jail).isNotNull();
        assertThat(relay).containsSubsequence("--jail", p.vmDir().resolve("jail").toString())
                .containsSubsequence("--jail-uid", Integer.toString(UID), "--jail-gid", Integer.toString(UID))
                .containsSubsequence("--jail-mounts", p.vmDir().resolve("jail.mounts").toString())
                .containsSubsequence("--api-sock", "run/firecracker.sock")
                .containsSubsequence("--listen", "run/vsock.sock_1024")
                .doesNotContain("--seccomp", "--jail-new-netns"); // the sandbox's namespace: VmIsolator's --netns
        assertThat(p.vmDir().resolve("seccomp.bpf")).doesNotExist();
        assertThat(jail.allowed()).isZero();
        assertThat(jail.seccomp()).isEqualTo("Firecracker's own filters");

        Map<Path, String> mounts = mounts(p.vmDir());
        assertThat(mounts).containsEntry(p.binary().toRealPath(), "exec")
                .containsEntry(p.vmlinux(), "ro").containsEntry(p.initrd(), "ro")
                .containsEntry(p.image(), "ro").containsEntry(p.disk(), "rw")
                .containsEntry(p.vmDir().resolve("run"), "rw")
                .containsEntry(Path.of("/dev/kvm"), "dev").containsEntry(Path.of("/dev/net/tun"), "dev")
                .containsEntry(Path.of("/dev/null"), "dev").containsEntry(Path.of("/dev/urandom"), "dev");
        assertThat(mounts.keySet()).as("nothing else of the host: no /proc, /sys, /etc, no other sandbox's files")
                .hasSize(10);

        // what the VMM's uid can open through those binds (a bind bypasses the 0700 directories above a file)
        assertThat(Files.getAttribute(p.disk(), "unix:uid")).isEqualTo(UID);
        assertThat(Files.getPosixFilePermissions(p.disk())).containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ,
                PosixFilePermission.OWNER_WRITE);
        assertThat(Files.getPosixFilePermissions(p.image())).contains(PosixFilePermission.OTHERS_READ)
                .doesNotContain(PosixFilePermission.OTHERS_WRITE, PosixFilePermission.GROUP_WRITE);
        assertThat(Files.getPosixFilePermissions(p.vmlinux())).contains(PosixFilePermission.OTHERS_READ);
        assertThat(Files.getAttribute(p.vmDir().resolve("run"), "unix:uid")).isEqualTo(UID);

        // every path a request names is inside the jail, bound as it must be used; every request is Firecracker's
        Path vmDir = p.vmDir();
        List<String> reached = new ArrayList<>();
        for (String[] r : requests(vmDir)) {
            String[] line = r[0].split(" ");
            JsonNode body = JSON.readTree(r[1]);
            assertThat(FirecrackerTest.api.check(line[0], line[1], body)).as(r[0]).isEmpty();
            for (String field : List.of("kernel_image_path", "initrd_path", "path_on_host", "uds_path")) {
                if (!body.has(field)) continue;
                Path path = vmDir.resolve(body.get(field).asText()); // relative: to its cwd, vm/, as in the jail
                reached.add(field + (body.has("drive_id") ? "[" + body.get("drive_id").asText() + "]" : "") + " "
                        + reachedAs(mounts, path));
            }
        }
        assertThat(reached).containsExactly("kernel_image_path ro", "initrd_path ro", "path_on_host[image] ro",
                "path_on_host[rw] rw", "uds_path rw (under " + vmDir.resolve("run") + ")");
        // the relay's sockets: Firecracker's API socket and the one it connects the guest's port 1024 to, in run/
        assertThat(reachedAs(mounts, vmDir.resolve(FirecrackerCommand.API_SOCKET))).startsWith("rw (under");
        assertThat(reachedAs(mounts, vmDir.resolve(FirecrackerCommand.controlSocket()))).startsWith("rw (under");

        JailRecord.write(vmDir, jail);
        assertThat(JailRecord.read(vmDir).orElseThrow().inspect()).containsEntry("Enabled", true)
                .containsEntry("Uid", UID).containsEntry("Seccomp", "Firecracker's own filters")
                .containsEntry("Namespaces", "mount, pid, ipc, uts of its own; network: the sandbox's");
    }

    /**
     * A restore from a checkpoint (docs/checkpoint.md, "Firecracker"): the relay sends the load sequence instead of the
     * boot's and no START; the checkpoint's state and memory (root's, 0600, in the sandbox's 0700 tree) are bound
     * read-only and readable to the VMM's group alone; every path the requests name is inside the jail.
     */
    @Test
    void aRestoringFirecrackerLoadsTheCheckpointThroughItsJail() throws IOException {
        FirecrackerTest.loadApiDefinition();
        Prepared boot = launch(FirecrackerTest.BRIDGED); // the files a start has
        Path ckpt = Files.createDirectories(dir.resolve("sandboxes/abc/checkpoints/c1"));
        Path state = Files.writeString(ckpt.resolve("state"), "s");
        Path mem = Files.writeString(ckpt.resolve("mem"), "m");
        for (Path f : List.of(state, mem)) Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-------"));
        Vmm.Launch launch = new Firecracker(Map.of("firecracker", boot.binary()), dir.resolve("kernels"))
                .launch(new Vmm.Machine("abc", boot.vmlinux(), boot.initrd(), boot.image(), boot.disk(), 256, 1,
                        FirecrackerTest.BRIDGED, UID, 0, state), boot.vmDir());
        assertThat(launch.relayOptions()).contains("--resume").containsSubsequence("--api-sock", "run/firecracker.sock")
                .containsSubsequence("--listen", "run/vsock.sock_1024").doesNotContain("--qmp-sock");

        Map<Path, String> mounts = mounts(boot.vmDir());
        assertThat(mounts).containsEntry(state, "ro").containsEntry(mem, "ro").containsEntry(boot.disk(), "rw")
                .containsEntry(Path.of("/dev/net/tun"), "dev");
        for (Path f : List.of(state, mem)) {
            assertThat(Files.getAttribute(f, "unix:uid")).isEqualTo(0);
            assertThat(Files.getAttribute(f, "unix:gid")).isEqualTo(UID);
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(f))).isEqualTo("rw-r-----");
        }
        List<String> reached = new ArrayList<>();
        for (String[] r : requests(boot.vmDir())) {
            String[] line = r[0].split(" ");
            JsonNode body = JSON.readTree(r[1]);
            assertThat(FirecrackerTest.api.check(line[0], line[1], body)).as(r[0]).isEmpty();
            reached.add(r[0].substring(0, r[0].indexOf(" HTTP/")));
            for (JsonNode p : List.of(body.path("snapshot_path"), body.path("mem_backend").path("backend_path"),
                    body.path("path_on_host"), body.path("vsock_override").path("uds_path"))) {
                if (p.isTextual()) reached.add("  " + reachedAs(mounts, boot.vmDir().resolve(p.asText())));
            }
        }
        assertThat(reached).containsExactly("PUT /snapshot/load", "  ro", "  ro", "  rw (under "
                + boot.vmDir().resolve("run") + ")", "PATCH /drives/image", "  ro", "PATCH /drives/rw", "  rw",
                "PATCH /vm");
    }

    @Test
    void withoutACardTheJailHasNoTunAndAnEmptyNetworkNamespace() throws IOException {
        Prepared p = launch(null);
        assertThat(p.launch().relayOptions()).contains("--jail-new-netns").doesNotContain("--seccomp");
        assertThat(mounts(p.vmDir())).doesNotContainKey(Path.of("/dev/net/tun")).containsKey(Path.of("/dev/kvm"));
        assertThat(requests(p.vmDir())).extracting(r -> r[0]).noneMatch(l -> l.contains("/network-interfaces/"));
    }

    /**
     * Firecracker opens its TAP by name as the VMM's uid, without CAP_NET_ADMIN: the kernel lets it attach only to a
     * persistent TAP that uid owns, so a jailed Firecracker's tap0 is made its (QEMU's stays root's: the relay opens
     * it). A real namespace with a veth eth0 in place of the CNI one; deleted after.
     */
    @Test
    void aJailedFirecrackersTapIsOwnedByItsUid() {
        String ns = "kiln-fcjail-" + UUID.randomUUID().toString().substring(0, 8);
        Command.run("ip", "netns", "add", ns);
        try {
            Command.run("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1");
            GuestNic nic = new GuestNic("02:42:0a:58:00:07", "10.88.0.7", 16, "10.88.0.1", 1500,
                    Path.of("/var/run/netns", ns), List.of());
            nic.prepare(Files.createDirectories(dir.resolve("vm")), UID);
            assertThat(Command.run("ip", "-n", ns, "-d", "link", "show", "tap0"))
                    .contains("user " + UID).contains("group " + UID);
            Command.run("ip", "-n", ns, "link", "del", "tap0");
            Command.run("tc", "-n", ns, "qdisc", "del", "dev", "eth0", "ingress");
            nic.prepare(dir.resolve("vm"), null);
            assertThat(Command.run("ip", "-n", ns, "-d", "link", "show", "tap0")).doesNotContain("user ");
        } catch (IOException e) {
            throw new AssertionError(e);
        } finally {
            Command.run("ip", "netns", "del", ns);
        }
    }
}
