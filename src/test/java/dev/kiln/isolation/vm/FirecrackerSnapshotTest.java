package dev.kiln.isolation.vm;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import dev.kiln.isolation.shim.ShimBinary;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The snapshot start ({@code vm-snapshot: true}) on Firecracker (docs/vm.md, "On Firecracker"), <b>without a
 * Firecracker</b> (none can run here: no binary, no usable KVM): the template's save and a restore go through the
 * shipped relay to {@link FirecrackerApiPeer}, which checks every request against Firecracker's API definition,
 * records their order and writes the snapshot's files as Firecracker would; the guest's side is {@link GuestPeer}; the
 * "firecracker" binary is a script that only sleeps (the VMM's process, which the relay starts and kills).
 */
class FirecrackerSnapshotTest {

    private static final int UID = 100_065_003; // in the default vmm-uid-range; owns nothing on this host
    private static final long MEMORY_MIB = 64;

    @TempDir
    Path dir;
    Path snapshots;
    Firecracker firecracker;
    FirecrackerCheckpoint.Shape shape;

    @BeforeEach
    void files() throws IOException {
        FirecrackerTest.loadApiDefinition();
        Path kernels = Files.createDirectories(dir.resolve("kernels/6.1"));
        Path vmlinux = Files.write(kernels.resolve("vmlinux"), new byte[]{0x7f, 'E', 'L', 'F'});
        Path initrd = Files.write(kernels.resolve("initramfs.cpio"), new byte[]{1});
        Path binary = Files.writeString(Files.createDirectories(dir.resolve("bin")).resolve("firecracker"),
                "#!/bin/sh\nexec sleep 600\n"); // the VMM's process only: serves nothing (the peer does)
        Files.setPosixFilePermissions(binary, PosixFilePermissions.fromString("rwxr-xr-x"));
        firecracker = new Firecracker(Map.of("firecracker", binary), dir.resolve("kernels"));
        shape = firecracker.shape(new Vmm.Machine("abc", vmlinux, initrd, null, null, MEMORY_MIB, 1, null, null));
        snapshots = dir.resolve("vm-snapshots");
    }

    /** What Firecracker does for PUT /snapshot/create: both files, relative to its directory {@code vm}. */
    static FirecrackerApiPeer.Handler writesTheSnapshot(Path vm, long memBytes) {
        return call -> {
            if (call.line().equals("PUT /snapshot/create")) {
                Files.writeString(vm.resolve(call.body().path("snapshot_path").asText()), "vcpus and devices");
                try (RandomAccessFile f = new RandomAccessFile(vm.resolve(call.body().path("mem_file_path").asText())
                        .toFile(), "rw")) {
                    f.setLength(memBytes);
                    f.write("the template's memory".getBytes(StandardCharsets.US_ASCII));
                }
            }
            return FirecrackerApiPeer.Reply.OK;
        };
    }

    /** The template's run, seen from outside: the API calls it got, and what the guest heard after its HELLO. */
    record TemplateRun(List<FirecrackerApiPeer.Call> calls, List<String> problems, String afterHello) {
    }

    /**
     * Makes the snapshot with {@link FirecrackerSnapshot#ensure} (kilnd's call) while this thread plays Firecracker's
     * API ({@code handler}, on the template's socket once its VMM runs) and the guest (HELLO answered, then waits for
     * START, which must never come). Returns what the template's VMM was asked; ensure's own outcome in {@code made}.
     */
    TemplateRun makeTemplate(FirecrackerApiPeer.Handler handler, CompletableFuture<Path> made) throws Exception {
        Path vm = snapshots.resolve(FirecrackerSnapshot.key(shape) + ".tmp/vm");
        CompletableFuture.runAsync(() -> {
            try {
                made.complete(FirecrackerSnapshot.ensure(snapshots, shape, firecracker.template(shape), null,
                        Duration.ofSeconds(20)));
            } catch (RuntimeException e) {
                made.completeExceptionally(e);
            }
        });
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!Files.exists(vm.resolve("vmm.pid")) && System.nanoTime() < deadline) Thread.sleep(5);
        try (FirecrackerApiPeer api = new FirecrackerApiPeer(vm.resolve(FirecrackerCommand.API_SOCKET),
                FirecrackerTest.api, handler(handler, vm)).start()) {
            Path sock = vm.resolve(FirecrackerCommand.controlSocket());
            while (!Files.exists(sock) && System.nanoTime() < deadline) Thread.sleep(5);
            var ch = java.nio.channels.SocketChannel.open(java.net.StandardProtocolFamily.UNIX);
            ch.connect(java.net.UnixDomainSocketAddress.of(sock));
            var in = new java.io.DataInputStream(java.nio.channels.Channels.newInputStream(ch));
            var out = java.nio.channels.Channels.newOutputStream(ch);
            assertThat(GuestPeer.read(in).type()).isEqualTo(GuestPeer.HELLO);
            GuestPeer.send(out, GuestPeer.HELLO, 0, "version=1\0uptime_ms=5\0");
            String after;
            try {
                after = "frame " + GuestPeer.read(in).type();
            } catch (IOException e) {
                after = "closed"; // the relay killed the template and ended: never a START
            }
            ch.close();
            try {
                made.get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                // the test reads the outcome from made
            }
            return new TemplateRun(api.calls(), api.problems(), after);
        }
    }

    private static FirecrackerApiPeer.Handler handler(FirecrackerApiPeer.Handler h, Path vm) {
        return h == null ? writesTheSnapshot(vm, MEMORY_MIB << 20) : h;
    }

    @Test
    void theTemplateBootsWithPlaceholderDrivesThenIsPausedAndSnapshottedAfterHelloAndTheFilesLeaveTheVmmsReach()
            throws Exception {
        CompletableFuture<Path> made = new CompletableFuture<>();
        TemplateRun run = makeTemplate(null, made);
        Path state = made.get(1, TimeUnit.SECONDS);
        assertThat(run.problems()).as("every request is Firecracker's").isEmpty();
        assertThat(run.calls().stream().map(FirecrackerApiPeer.Call::line)).containsExactly("PUT /machine-config",
                "PUT /boot-source", "PUT /drives/image", "PUT /drives/rw", "PUT /vsock", "PUT /actions", "PATCH /vm",
                "PUT /snapshot/create");
        Map<String, JsonNode> body = new LinkedHashMap<>();
        run.calls().forEach(c -> body.put(c.line(), c.body()));
        assertThat(body.get("PUT /boot-source").path("boot_args").asText()).endsWith(" kiln.snapshot init_on_free=1");
        assertThat(body.get("PUT /drives/image").path("path_on_host").asText()).isEqualTo("drives/image");
        assertThat(body.get("PUT /drives/image").path("is_read_only").asBoolean()).isTrue();
        assertThat(body.get("PUT /drives/rw").path("path_on_host").asText()).isEqualTo("drives/rw");
        assertThat(body.get("PUT /drives/rw").path("is_read_only").asBoolean()).isFalse();
        assertThat(body.get("PATCH /vm").path("state").asText()).isEqualTo("Paused");
        assertThat(body.get("PUT /snapshot/create").path("snapshot_type").asText()).isEqualTo("Full");
        assertThat(body.get("PUT /snapshot/create").path("snapshot_path").asText()).isEqualTo("run/snapshot.state");
        assertThat(run.afterHello()).as("the template never gets START").isEqualTo("closed");
        assertThat(run.calls().subList(6, 8)).extracting(c -> FirecrackerTest.api.phase(c.method(), c.path()))
                .as("the save is what the spec allows a booted VM").doesNotContain("pre-boot");

        Path snap = snapshots.resolve(FirecrackerSnapshot.key(shape));
        assertThat(state).isEqualTo(snap.resolve("state"));
        assertThat(Files.readString(snap.resolve("shape"))).startsWith("format=firecracker-snapshot-1\n")
                .contains("memory-mib=" + MEMORY_MIB + "\n");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(snap))).isEqualTo("rwx------");
        for (String f : List.of("state", "mem")) {
            Path p = snap.resolve(f);
            assertThat(Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS)).as(f).isEqualTo(0);
            assertThat(Files.getAttribute(p, "unix:nlink", LinkOption.NOFOLLOW_LINKS)).as(f).isEqualTo(1);
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(p))).as(f).isEqualTo("rw-r--r--");
        }
        assertThat(Files.size(snap.resolve("mem"))).isEqualTo(MEMORY_MIB << 20);
        try (var names = Files.list(snapshots)) {
            assertThat(names.map(p -> p.getFileName().toString())).as("the template's directory is gone")
                    .containsExactlyInAnyOrder(snap.getFileName().toString(), snap.getFileName() + ".lock");
        }
        // the next VM of the shape finds it: no template
        assertThat(FirecrackerSnapshot.ensure(snapshots, shape, (vm, uid) -> {
            throw new AssertionError("a second template");
        }, null, Duration.ofSeconds(5))).isEqualTo(state);
    }

    @Test
    void whatTheTemplatesVmmLeavesInsteadOfItsSnapshotIsRefusedInOneLineAndNothingOutsideIsTouched() throws Exception {
        Path host = Files.writeString(dir.resolve("host-secret"), "not the VM's");
        Files.setPosixFilePermissions(host, PosixFilePermissions.fromString("rw-r--r--"));
        Path vm = snapshots.resolve(FirecrackerSnapshot.key(shape) + ".tmp/vm");
        Path mem = vm.resolve(FirecrackerCommand.TEMPLATE_MEM);
        Map<String, FirecrackerApiPeer.Handler> cases = new LinkedHashMap<>();
        cases.put("is not a regular file", swapped(vm, () -> {
            Files.delete(mem);
            Files.createSymbolicLink(mem, host);
        }));
        cases.put("is 2 links to it", swapped(vm, () -> {
            Files.delete(mem);
            Files.createLink(mem, host);
        }));
        cases.put("more than " + (MEMORY_MIB << 20), writesTheSnapshot(vm, (MEMORY_MIB << 20) + 1));
        cases.put("owned by uid " + UID + ", not the VMM's 0", swapped(vm, () -> Files.setAttribute(mem, "unix:uid",
                UID)));
        for (Map.Entry<String, FirecrackerApiPeer.Handler> c : cases.entrySet()) {
            CompletableFuture<Path> made = new CompletableFuture<>();
            TemplateRun run = makeTemplate(c.getValue(), made);
            assertThat(run.calls().getLast().line()).as(c.getKey()).isEqualTo("PUT /snapshot/create");
            assertThatThrownBy(made::join).as(c.getKey()).cause().isInstanceOf(KilnException.class)
                    .hasMessageStartingWith("cannot make the VM snapshot: Firecracker's snapshot.mem is ")
                    .hasMessageEndingWith(c.getKey()).message().doesNotContain("\n");
            assertThat(Files.readString(host)).isEqualTo("not the VM's");
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(host))).isEqualTo("rw-r--r--");
            assertThat(Files.getAttribute(host, "unix:nlink")).as("the hard link's name is gone").isEqualTo(1);
            assertThat(Files.getAttribute(host, "unix:uid")).isEqualTo(0);
            try (var names = Files.list(snapshots)) {
                assertThat(names.map(p -> p.getFileName().toString())).as(c.getKey() + ": no snapshot, no template")
                        .containsExactly(FirecrackerSnapshot.key(shape) + ".lock");
            }
        }
    }

    interface Swap {
        void swap() throws IOException;
    }

    /** Firecracker's snapshot, then the VMM's memory file replaced by {@code swap} before kiln takes it. */
    static FirecrackerApiPeer.Handler swapped(Path vm, Swap swap) {
        return call -> {
            writesTheSnapshot(vm, 1 << 20).handle(call);
            if (call.line().equals("PUT /snapshot/create")) swap.swap();
            return FirecrackerApiPeer.Reply.OK;
        };
    }

    @Test
    void firecrackersRefusalOfTheSaveIsTheOneLineAndLeavesNoSnapshot() throws Exception {
        CompletableFuture<Path> made = new CompletableFuture<>();
        makeTemplate(call -> call.line().equals("PUT /snapshot/create")
                ? new FirecrackerApiPeer.Reply(400, "Cannot create snapshot: No space left on device")
                : FirecrackerApiPeer.Reply.OK, made);
        assertThatThrownBy(made::join).cause().isInstanceOf(KilnException.class)
                .hasMessage("cannot make the VM snapshot: the VMM refused PUT /snapshot/create (HTTP 400): Cannot "
                        + "create snapshot: No space left on device");
        try (var names = Files.list(snapshots)) {
            assertThat(names.map(p -> p.getFileName().toString()))
                    .containsExactly(FirecrackerSnapshot.key(shape) + ".lock");
        }
    }

    /**
     * kilnd killed while a template boots: the template's relay (--save-requests) sees its parent gone, kills its VMM
     * and ends, so nothing runs on (the template's directory is removed by the next attempt, as for QEMU).
     */
    @Test
    void aTemplatesRelayWhoseKilndDiesKillsItsVmmAndEnds() throws Exception {
        Path vm = Files.createDirectories(dir.resolve("template/vm/run")).getParent();
        Files.write(vm.resolve("start.spec"), "arg=true\0".getBytes(StandardCharsets.UTF_8));
        Files.write(vm.resolve(FirecrackerCommand.REQUESTS_FILE), new byte[0]); // nothing to configure: no API here
        Files.write(vm.resolve(FirecrackerCommand.SAVE_REQUESTS_FILE),
                FirecrackerApi.script(FirecrackerCommand.saveRequests()));
        String relay = String.join(" ", ShimBinary.locate().toString(), "--relay-vm", "--dir", vm.toString(), "--spec",
                vm.resolve("start.spec").toString(), "--hello-timeout", "60", "--save-requests",
                FirecrackerCommand.SAVE_REQUESTS_FILE, "--api-sock", FirecrackerCommand.API_SOCKET, "--api-requests",
                FirecrackerCommand.REQUESTS_FILE, "--listen", FirecrackerCommand.controlSocket(), "--", "sleep", "600");
        // "kilnd": starts the relay and dies while the template waits for its guest
        Process kilnd = new ProcessBuilder("sh", "-c", relay + " >" + vm.resolve("relay.log") + " 2>&1 & echo $!; "
                + "while [ ! -s " + vm.resolve("vmm.pid") + " ]; do sleep 0.05; done; sleep 0.3").start();
        long relayPid = Long.parseLong(new String(kilnd.getInputStream().readNBytes(20), StandardCharsets.US_ASCII)
                .lines().findFirst().orElseThrow().strip());
        assertThat(kilnd.waitFor(20, TimeUnit.SECONDS)).isTrue();
        long vmmPid = Long.parseLong(Files.readString(vm.resolve("vmm.pid")).strip());
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while ((ProcessHandle.of(relayPid).map(ProcessHandle::isAlive).orElse(false)
                || ProcessHandle.of(vmmPid).map(ProcessHandle::isAlive).orElse(false)) && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertThat(ProcessHandle.of(vmmPid).map(ProcessHandle::isAlive)).as("the template's VMM").isNotEqualTo(
                java.util.Optional.of(true));
        assertThat(ProcessHandle.of(relayPid).map(ProcessHandle::isAlive)).as("its relay").isNotEqualTo(
                java.util.Optional.of(true));
        assertThat(Files.readString(vm.resolve("relay.log"))).contains("the VM's snapshot was given up: kilnd is gone");
    }

    /**
     * A shape with a card: the template gets one on {@code tap0} with the placeholder MAC (every request still the
     * spec's), in a namespace of its own in which its relay makes that TAP ({@code --jail-tap}); never unjailed, where
     * it would be the host's namespace.
     */
    @Test
    void aTemplateWithACardIsOnATapOfItsOwnNamespace() throws IOException {
        FirecrackerCheckpoint.Shape card = firecracker.shape(new Vmm.Machine("abc", shape.kernel(), shape.initrd(),
                null, null, MEMORY_MIB, 1, FirecrackerTest.BRIDGED, null));
        assertThat(FirecrackerSnapshot.key(card)).isNotEqualTo(FirecrackerSnapshot.key(shape));
        Path vm = Files.createDirectories(dir.resolve("t/vm"));
        FirecrackerSnapshot.placeholders(vm);
        Vmm.Launch launch = firecracker.template(card).launch(vm, UID);
        assertThat(launch.relayOptions()).containsSubsequence("--jail-new-netns").containsSubsequence("--jail-tap",
                "tap0").doesNotContain("--resume");
        assertThat(Files.readAllLines(vm.resolve("jail.mounts"))).contains("dev\t/dev/net/tun");
        String boot = Files.readString(vm.resolve(FirecrackerCommand.REQUESTS_FILE), StandardCharsets.US_ASCII);
        List<String> lines = java.util.Arrays.stream(boot.split("\0")).filter(r -> !r.isEmpty())
                .map(r -> r.lines().findFirst().orElseThrow()).toList();
        assertThat(lines).extracting(l -> l.substring(0, l.indexOf(" HTTP/"))).containsExactly("PUT /machine-config",
                "PUT /boot-source", "PUT /drives/image", "PUT /drives/rw", "PUT /network-interfaces/net0", "PUT /vsock",
                "PUT /actions");
        FirecrackerApi.Request nic = new FirecrackerCommand("t", shape.kernel(), shape.initrd(),
                vm.resolve("drives/image"), vm.resolve("drives/rw"), MEMORY_MIB, 1, null).templateRequests(true).get(4);
        assertThat(FirecrackerTest.api.check(nic.method(), nic.path(), nic.body())).isEmpty();
        assertThat(nic.body().path("host_dev_name").asText()).isEqualTo("tap0");
        assertThat(nic.body().path("guest_mac").asText()).isEqualTo(VmSnapshot.TEMPLATE_MAC);
        assertThatThrownBy(() -> firecracker.template(card).launch(vm, null)).isInstanceOf(IllegalStateException.class);
    }

    /**
     * The relay's {@code --jail-tap}: in the jailed VMM's own new network namespace, a persistent TAP owned by the
     * VMM's uid and gid (Firecracker opens it by name without CAP_NET_ADMIN), gone with the namespace. The "VMM" is
     * busybox's sleep, bound alone into the jail.
     */
    @Test
    void theRelayMakesTheTemplatesTapInTheVmmsOwnNamespaceOwnedByItsUid() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isExecutable(Path.of("/bin/busybox"))
                && Files.isExecutable(Path.of("/usr/bin/nsenter")), "needs busybox-static and util-linux's nsenter");
        Path vm = Files.createDirectories(dir.resolve("tap/vm"));
        Files.createDirectories(vm.resolve("jail"));
        Files.write(vm.resolve("start.spec"), "arg=true\0".getBytes(StandardCharsets.UTF_8));
        Files.writeString(vm.resolve("jail.mounts"), "exec\t/bin/busybox\n");
        Process relay = new ProcessBuilder(ShimBinary.locate().toString(), "--relay-vm", "--dir", vm.toString(),
                "--spec", vm.resolve("start.spec").toString(), "--hello-timeout", "30", "--jail",
                vm.resolve("jail").toString(), "--jail-uid", Integer.toString(UID), "--jail-gid", Integer.toString(UID),
                "--jail-mounts", vm.resolve("jail.mounts").toString(), "--jail-new-netns", "--jail-tap", "tap0", "--",
                "/bin/busybox", "sleep", "600").redirectErrorStream(true).redirectOutput(vm.resolve("relay.log")
                .toFile()).start();
        try {
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (!Files.exists(vm.resolve("vmm.pid")) && System.nanoTime() < deadline) Thread.sleep(5);
            long vmm = Long.parseLong(Files.readString(vm.resolve("vmm.pid")).strip());
            Process ip = new ProcessBuilder("nsenter", "--net=/proc/" + vmm + "/ns/net", "ip", "-d", "link", "show")
                    .redirectErrorStream(true).start();
            String links = new String(ip.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(ip.waitFor()).as(links).isZero();
            assertThat(links).as(Files.readString(vm.resolve("relay.log"))).contains(": tap0: ")
                    .contains("tun type tap").contains("vnet_hdr on").contains("persist on")
                    .contains("user " + UID).contains("group " + UID);
            assertThat(links.lines().filter(l -> l.matches("^\\d+: .*"))).as("lo and the TAP, nothing of the host's")
                    .hasSize(2);
            // the relay killed outright: its jailed VMM dies with it (PR_SET_PDEATHSIG, set again after the jail's
            // uid change, which clears it), and the namespace with its TAP
            relay.destroyForcibly();
            assertThat(relay.waitFor(10, TimeUnit.SECONDS)).isTrue();
            ProcessHandle handle = ProcessHandle.of(vmm).orElse(null);
            if (handle != null) {
                assertThat(handle.onExit().get(10, TimeUnit.SECONDS).isAlive()).as("the VMM outlived its relay")
                        .isFalse();
            }
        } finally {
            relay.destroyForcibly();
            relay.waitFor(10, TimeUnit.SECONDS);
            String pid = Files.exists(vm.resolve("vmm.pid")) ? Files.readString(vm.resolve("vmm.pid")).strip() : "";
            if (!pid.isEmpty()) ProcessHandle.of(Long.parseLong(pid)).ifPresent(ProcessHandle::destroyForcibly);
        }
    }

    /** A snapshot directory holding {@code shapeText} as its shape, where {@link #shape}'s key says. */
    private Path snapshotWith(String shapeText) throws IOException {
        Path snap = Files.createDirectories(snapshots.resolve(FirecrackerSnapshot.key(shape)));
        Files.writeString(snap.resolve("shape"), shapeText);
        Files.writeString(snap.resolve("state"), "s");
        Files.writeString(snap.resolve("mem"), "m");
        return snap;
    }

    @Test
    void aSnapshotOfAnotherShapeIsRefusedInOneLine() throws IOException {
        FirecrackerCheckpoint.Shape other = new FirecrackerCheckpoint.Shape(shape.kernel(), shape.kernelSize(),
                shape.kernelMtime(), shape.initrd(), shape.initrdSize(), 256, shape.vcpus(), false,
                shape.firecracker(), shape.binarySize(), shape.binaryMtime());
        Path snap = snapshotWith(VmSnapshot.shapeText(FirecrackerSnapshot.fields(other)));
        FirecrackerSnapshot.Template none = (vm, uid) -> {
            throw new AssertionError("no template for a snapshot that is there");
        };
        assertThatThrownBy(() -> FirecrackerSnapshot.ensure(snapshots, shape, none, null, Duration.ofSeconds(5)))
                .isInstanceOf(KilnException.class)
                .hasMessage("the VM snapshot in " + snap + " was made for another VM: memory-mib 256, not "
                        + MEMORY_MIB + " (kiln restores a snapshot only into a VM of its kernel, memory, vCPUs and "
                        + "devices; remove that directory and kiln makes a new one)");
        // a QEMU snapshot's shape, and a Firecracker checkpoint's, are never this one
        snapshotWith("format=3\n" + VmSnapshot.shapeText(FirecrackerSnapshot.fields(shape)).lines().skip(1)
                .map(l -> l + "\n").reduce("", String::concat));
        assertThatThrownBy(() -> FirecrackerSnapshot.ensure(snapshots, shape, none, null, Duration.ofSeconds(5)))
                .hasMessageContaining("was made for another VM: format 3, not firecracker-snapshot-1 (");
        snapshotWith(shape.text());
        assertThatThrownBy(() -> FirecrackerSnapshot.ensure(snapshots, shape, none, null, Duration.ofSeconds(5)))
                .hasMessageContaining("was made for another VM: format firecracker-1, not firecracker-snapshot-1 (");
    }

    /** A snapshot as {@link FirecrackerSnapshot#ensure} leaves it, made here by hand. */
    private Path madeSnapshot() throws IOException {
        Path snap = snapshotWith(VmSnapshot.shapeText(FirecrackerSnapshot.fields(shape)));
        for (String f : List.of("state", "mem")) {
            Files.setPosixFilePermissions(snap.resolve(f), PosixFilePermissions.fromString("rw-r--r--"));
        }
        return snap.resolve("state");
    }

    /** A sandbox's files as VmIsolator has them when it launches: image disk, writable disk, vm/. */
    record Sandbox(Path image, Path disk, Path vm) {
    }

    private Sandbox sandbox(String id) throws IOException {
        Path image = dir.resolve("vm-disks/i.erofs");
        if (!Files.exists(image)) Files.write(Files.createDirectories(image.getParent()).resolve("i.erofs"),
                new byte[]{2});
        Path sandbox = Files.createDirectories(dir.resolve("sandboxes/" + id));
        Path disk = Files.write(sandbox.resolve("disk.ext4"), new byte[]{3});
        return new Sandbox(image, disk, Files.createDirectories(sandbox.resolve("vm")));
    }

    /**
     * Two VMs restored from one snapshot through the shipped relay: each Firecracker gets the load (the shared state
     * and memory, paused), its drives re-pointed from its own placeholders to its sandbox's disks, then Resumed; the
     * relay then greets the reconnected kiln-init and, unlike a checkpoint's restore, sends START, with a seed and a
     * time of its own for each VM.
     */
    @Test
    void eachVmRestoredFromOneSnapshotLoadsItOverItsOwnPlaceholdersAndGetsAStartWithItsOwnSeed() throws Exception {
        Path state = madeSnapshot();
        List<String> seeds = new ArrayList<>();
        for (String id : List.of("vm1", "vm2")) {
            Sandbox s = sandbox(id);
            Vmm.Launch launch = firecracker.launch(new Vmm.Machine(id, shape.kernel(), shape.initrd(), s.image(),
                    s.disk(), MEMORY_MIB, 1, null, null, 0, state), s.vm());
            assertThat(launch.relayOptions()).as("a snapshot's VM is started: no --resume").doesNotContain("--resume");
            Path image = s.vm().resolve("drives/image");
            Path rw = s.vm().resolve("drives/rw");
            assertThat(Files.size(image)).isEqualTo(1 << 20);
            assertThat(Files.size(rw)).isEqualTo(1 << 20);
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(rw))).isEqualTo("rw-------");

            Path relayDir = s.vm().getParent();
            GuestPeer.Relay relay = GuestPeer.Relay.start(ShimBinary.locate(), relayDir, 30, true, Map.of(),
                    "--api-sock", FirecrackerCommand.API_SOCKET, "--api-requests", FirecrackerCommand.REQUESTS_FILE);
            try {
                long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
                while (!Files.exists(s.vm().resolve("vmm.pid")) && System.nanoTime() < deadline) Thread.sleep(5);
                try (FirecrackerApiPeer api = new FirecrackerApiPeer(s.vm().resolve(FirecrackerCommand.API_SOCKET),
                        FirecrackerTest.api, call -> FirecrackerApiPeer.Reply.OK).start();
                     GuestPeer.Guest guest = relay.connect()) {
                    assertThat(GuestPeer.read(guest.in()).type()).isEqualTo(GuestPeer.HELLO);
                    assertThat(api.lines()).as("all sent before the guest could run").containsExactly(
                            "PUT /snapshot/load", "PATCH /drives/image", "PATCH /drives/rw", "PATCH /vm");
                    assertThat(api.problems()).isEmpty();
                    JsonNode load = api.calls().get(0).body();
                    assertThat(load.path("snapshot_path").asText()).isEqualTo(state.toString());
                    assertThat(load.path("mem_backend").path("backend_type").asText()).isEqualTo("File");
                    assertThat(load.path("mem_backend").path("backend_path").asText())
                            .isEqualTo(state.resolveSibling("mem").toString());
                    assertThat(load.path("resume_vm").asBoolean(true)).isFalse();
                    assertThat(load.has("network_overrides")).isFalse();
                    assertThat(api.calls().get(1).body().path("path_on_host").asText()).isEqualTo(s.image().toString());
                    assertThat(api.calls().get(2).body().path("path_on_host").asText()).isEqualTo(s.disk().toString());
                    assertThat(api.calls().get(3).body().path("state").asText()).isEqualTo("Resumed");
                    GuestPeer.send(guest.out(), GuestPeer.HELLO, 0, "version=1\0uptime_ms=5\0");
                    GuestPeer.Frame start = GuestPeer.read(guest.in());
                    assertThat(start.type()).isEqualTo(GuestPeer.START);
                    String records = start.text();
                    assertThat(records).startsWith(new String(GuestPeer.START_RECORDS, StandardCharsets.UTF_8))
                            .contains("\0seed=").contains("\0time=");
                    seeds.add(records.substring(records.indexOf("seed="), records.indexOf("\0", records
                            .indexOf("seed="))));
                    GuestPeer.send(guest.out(), GuestPeer.EXIT, 0, "0 0");
                    assertThat(GuestPeer.read(guest.in()).type()).isEqualTo(GuestPeer.BYE);
                    relay.powerOff();
                    assertThat(relay.process().waitFor(20, TimeUnit.SECONDS)).isTrue();
                }
                assertThat(relay.process().exitValue()).as(relay.file("stderr")).isZero();
            } finally {
                relay.process().destroyForcibly();
            }
        }
        assertThat(seeds.get(0)).hasSize(5 + 128).isNotEqualTo(seeds.get(1));
    }

    /**
     * A restored VM's jail: the snapshot's state and memory bound read-only as they are (root's, 0644: shared by the
     * shape's VMMs, none of which may write them, and given to no VMM's group), its own placeholders (the writable
     * one its VMM's); a snapshot file that anyone but root could write, or of another owner, is refused.
     */
    @Test
    void aRestoredVmsJailBindsTheSnapshotReadOnlyAsItIsAndItsOwnPlaceholders() throws IOException {
        Path state = madeSnapshot();
        Sandbox s = sandbox("vm1");
        Path kernels = dir.resolve("kernels");
        Files.setPosixFilePermissions(kernels.resolve("6.1/vmlinux"), PosixFilePermissions.fromString("rw-------"));
        Vmm.Launch launch = firecracker.launch(new Vmm.Machine("vm1", shape.kernel(), shape.initrd(), s.image(),
                s.disk(), MEMORY_MIB, 1, null, UID, 0, state), s.vm());
        assertThat(launch.jail()).isNotNull();
        Map<Path, String> mounts = new LinkedHashMap<>();
        for (String line : Files.readAllLines(s.vm().resolve("jail.mounts"))) {
            String[] kv = line.split("\t");
            mounts.put(Path.of(kv[1]), kv[0]);
        }
        Path mem = state.resolveSibling("mem");
        assertThat(mounts).containsEntry(state, "ro").containsEntry(mem, "ro")
                .containsEntry(s.vm().resolve("drives/image"), "ro").containsEntry(s.vm().resolve("drives/rw"), "rw")
                .containsEntry(s.image(), "ro").containsEntry(s.disk(), "rw");
        for (Path p : List.of(state, mem)) {
            assertThat(Files.getAttribute(p, "unix:gid")).as("no VMM's group").isEqualTo(0);
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(p))).isEqualTo("rw-r--r--");
        }
        assertThat(Files.getAttribute(s.vm().resolve("drives/rw"), "unix:uid")).isEqualTo(UID);
        assertThat(Files.getAttribute(s.vm().resolve("drives/image"), "unix:uid")).isEqualTo(0);

        Files.setPosixFilePermissions(mem, PosixFilePermissions.fromString("rw-rw-r--"));
        Sandbox s2 = sandbox("vm2");
        assertThatThrownBy(() -> firecracker.launch(new Vmm.Machine("vm2", shape.kernel(), shape.initrd(),
                s2.image(), s2.disk(), MEMORY_MIB, 1, null, UID, 0, state), s2.vm()))
                .isInstanceOf(KilnException.class).hasMessage("the VM snapshot's " + mem + " is not a regular file of "
                        + "one link, root's and written by root alone (remove its directory and kiln makes a new one)");
        Files.setPosixFilePermissions(mem, PosixFilePermissions.fromString("rw-r--r--"));
        Files.setAttribute(mem, "unix:uid", UID);
        assertThatThrownBy(() -> firecracker.launch(new Vmm.Machine("vm2", shape.kernel(), shape.initrd(),
                s2.image(), s2.disk(), MEMORY_MIB, 1, null, UID, 0, state), s2.vm()))
                .hasMessageStartingWith("the VM snapshot's " + mem + " is not a regular file");
    }
}
