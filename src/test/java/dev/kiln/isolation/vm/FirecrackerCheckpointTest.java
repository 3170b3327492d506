package dev.kiln.isolation.vm;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.Resources;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.shim.ShimBinary;
import dev.kiln.isolation.vm.jail.VmmJail;
import org.junit.jupiter.api.AfterEach;
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
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Checkpoints of Firecracker VMs through its snapshot API (docs/checkpoint.md, "Firecracker"), <b>without a
 * Firecracker</b> (none can run here: no binary, no usable KVM): kiln's side is driven against {@link FirecrackerApiPeer},
 * which checks every request against Firecracker's API definition, records their order and does on disk what
 * Firecracker does (writes the snapshot's files where the request says, relative to the VMM's directory). The "VMM"
 * whose run a checkpoint ends is a {@code sleep}. The restore's relay side is the shipped kiln-shim.
 */
class FirecrackerCheckpointTest {

    private static final int UID = 100_065_002; // in the default vmm-uid-range; owns nothing on this host

    @TempDir
    Path dir;
    Path vmDir;
    Path checkpoint;
    SandboxSpec spec;
    Process vmm;

    @BeforeEach
    void sandbox() throws IOException {
        FirecrackerTest.loadApiDefinition();
        spec = new SandboxSpec("fcck", "fcck", "fcck", new ProcessSpec(List.of("sh"), List.of("PATH=/bin"), "/", 0, 0,
                List.of(), false, false), dir.resolve("rootfs"), false, Resources.UNLIMITED, Map.of(), List.of(), dir);
        try (RandomAccessFile disk = new RandomAccessFile(dir.resolve("disk.ext4").toFile(), "rw")) {
            disk.setLength(64L << 20); // sparse, as WritableDisk makes it
            disk.seek(1L << 20);
            disk.write("written by the guest".getBytes(StandardCharsets.US_ASCII));
        }
        vmDir = Files.createDirectories(dir.resolve("vm"));
        Files.createDirectories(vmDir.resolve(VmmJail.RUN));
        checkpoint = Files.createDirectories(dir.resolve("checkpoints/.c1.tmp"));
        vmm = new ProcessBuilder("sleep", "600").start(); // stands for the VMM's process only
    }

    @AfterEach
    void stop() {
        vmm.destroyForcibly();
    }

    static FirecrackerCheckpoint.Shape shape(long memoryMiB) {
        return new FirecrackerCheckpoint.Shape(Path.of("/k/vmlinux"), 10, 20, Path.of("/k/initramfs.cpio"), 30,
                memoryMiB, 1, false, Path.of("/usr/local/bin/firecracker"), 40, 50);
    }

    /** What Firecracker does for PUT /snapshot/create: both files, at the paths given, relative to its directory. */
    FirecrackerApiPeer.Handler writesTheSnapshot(long memBytes) {
        return call -> {
            if (call.line().equals("PUT /snapshot/create")) {
                Files.writeString(vmDir.resolve(call.body().path("snapshot_path").asText()), "vcpus and devices");
                try (RandomAccessFile f = new RandomAccessFile(vmDir.resolve(call.body().path("mem_file_path")
                        .asText()).toFile(), "rw")) {
                    f.setLength(memBytes);
                }
            }
            return FirecrackerApiPeer.Reply.OK;
        };
    }

    FirecrackerApiPeer peer(FirecrackerApiPeer.Handler handler) throws IOException {
        return new FirecrackerApiPeer(vmDir.resolve(FirecrackerCommand.API_SOCKET), FirecrackerTest.api, handler)
                .start();
    }

    @Test
    void aCheckpointPausesSnapshotsIntoTheVmmsDirectoryThenTakesTheFilesAndEndsTheRun() throws Exception {
        try (FirecrackerApiPeer fc = peer(writesTheSnapshot(256L << 20))) {
            FirecrackerCheckpoint.save(spec, checkpoint, false, vmDir, shape(256), Optional.of(vmm.pid()));
            assertThat(fc.problems()).as("every request is Firecracker's").isEmpty();
            assertThat(fc.lines()).containsExactly("PATCH /vm", "PUT /snapshot/create");
            assertThat(fc.calls().get(0).body().path("state").asText()).isEqualTo("Paused");
            JsonNode create = fc.calls().get(1).body();
            assertThat(create.path("snapshot_type").asText()).isEqualTo("Full");
            // relative to Firecracker's working directory, vm/, and inside run/: the one directory its jail may write
            assertThat(create.path("snapshot_path").asText()).isEqualTo("run/checkpoint.state");
            assertThat(create.path("mem_file_path").asText()).isEqualTo("run/checkpoint.mem");
        }
        assertThat(Files.readString(checkpoint.resolve("state"))).isEqualTo("vcpus and devices");
        assertThat(Files.size(checkpoint.resolve("mem"))).isEqualTo(256L << 20);
        for (String f : List.of("state", "mem")) {
            assertThat(Files.getAttribute(checkpoint.resolve(f), "unix:uid")).isEqualTo(0);
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(checkpoint.resolve(f))))
                    .isEqualTo("rw-------");
        }
        assertThat(vmDir.resolve(FirecrackerCommand.CHECKPOINT_STATE)).doesNotExist();
        assertThat(vmDir.resolve(FirecrackerCommand.CHECKPOINT_MEM)).doesNotExist();
        // the disk as the paused guest left it, sparse
        Path disk = checkpoint.resolve("disk.ext4");
        assertThat(Files.size(disk)).isEqualTo(64L << 20);
        assertThat(Long.parseLong(dev.kiln.testing.Command.run("stat", "-c", "%b", disk.toString()).strip()))
                .as("blocks: only the written one").isLessThan(64);
        try (RandomAccessFile f = new RandomAccessFile(disk.toFile(), "r")) {
            byte[] b = new byte[20];
            f.seek(1L << 20);
            f.readFully(b);
            assertThat(new String(b, StandardCharsets.US_ASCII)).isEqualTo("written by the guest");
        }
        assertThat(Files.readString(checkpoint.resolve("shape"))).isEqualTo(shape(256).text())
                .contains("format=firecracker-1\n", "memory-mib=256\n");
        assertThat(vmDir.resolve(VmCheckpoint.MARKER)).as("the relay ends the run 0").exists();
        assertThat(vmm.waitFor(5, TimeUnit.SECONDS)).as("the VMM is gone once the checkpoint is complete").isTrue();
        assertThat(FirecrackerCheckpoint.check(checkpoint, shape(256))).isEqualTo(checkpoint.resolve("state"));
    }

    /**
     * run/ is the VMM's: whatever it leaves there instead of its files — a link to a host file, a hard link, a file of
     * another owner, a file bigger than the guest's memory — is refused with one line, the VM resumed, and nothing
     * outside kiln's directories is read, changed or removed.
     */
    @Test
    void whatTheVmmLeavesInsteadOfItsSnapshotIsRefusedAndNothingOutsideIsTouched() throws Exception {
        Path host = Files.writeString(dir.resolve("host-secret"), "not the VM's");
        Files.setPosixFilePermissions(host, PosixFilePermissions.fromString("rw-r--r--"));
        Map<String, FirecrackerApiPeer.Handler> cases = Map.of(
                "is not a regular file", call -> {
                    writesTheSnapshot(1 << 20).handle(call);
                    if (call.line().equals("PUT /snapshot/create")) {
                        Files.delete(vmDir.resolve(FirecrackerCommand.CHECKPOINT_MEM));
                        Files.createSymbolicLink(vmDir.resolve(FirecrackerCommand.CHECKPOINT_MEM), host);
                    }
                    return FirecrackerApiPeer.Reply.OK;
                },
                "is 2 links to it", call -> {
                    writesTheSnapshot(1 << 20).handle(call);
                    if (call.line().equals("PUT /snapshot/create")) {
                        Files.delete(vmDir.resolve(FirecrackerCommand.CHECKPOINT_MEM));
                        Files.createLink(vmDir.resolve(FirecrackerCommand.CHECKPOINT_MEM), host);
                    }
                    return FirecrackerApiPeer.Reply.OK;
                },
                "more than " + (64L << 20), writesTheSnapshot((64L << 20) + 1));
        for (Map.Entry<String, FirecrackerApiPeer.Handler> c : cases.entrySet()) {
            try (FirecrackerApiPeer fc = peer(c.getValue())) {
                assertThatThrownBy(() -> FirecrackerCheckpoint.save(spec, checkpoint, false, vmDir, shape(64),
                        Optional.of(vmm.pid()))).as(c.getKey()).isInstanceOf(KilnException.class)
                        .hasMessageStartingWith("cannot checkpoint sandbox fcck: Firecracker's checkpoint.mem ")
                        .hasMessageContaining(c.getKey()).message().doesNotContain("\n");
                assertThat(fc.lines()).as(c.getKey()).containsExactly("PATCH /vm", "PUT /snapshot/create", "PATCH /vm");
                assertThat(fc.calls().get(2).body().path("state").asText()).isEqualTo("Resumed");
                assertThat(fc.problems()).isEmpty();
            }
            assertThat(Files.readString(host)).isEqualTo("not the VM's");
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(host))).isEqualTo("rw-r--r--");
            assertThat(Files.getAttribute(host, "unix:nlink")).as("the hard link's name is gone").isEqualTo(1);
            assertThat(checkpoint.resolve("mem")).doesNotExist();
            assertThat(Files.exists(checkpoint.resolve("mem"), LinkOption.NOFOLLOW_LINKS)).isFalse();
            assertThat(vmDir.resolve(VmCheckpoint.MARKER)).doesNotExist();
            assertThat(vmm.isAlive()).as("a refused checkpoint leaves the VM running").isTrue();
        }

        // a directory of links: taken out and removed without following any of them
        try (FirecrackerApiPeer fc = peer(call -> {
            writesTheSnapshot(1 << 20).handle(call);
            if (call.line().equals("PUT /snapshot/create")) {
                Path mem = vmDir.resolve(FirecrackerCommand.CHECKPOINT_MEM);
                Files.delete(mem);
                Files.createDirectories(mem.resolve("sub"));
                Files.createSymbolicLink(mem.resolve("secret"), host);
                Files.createSymbolicLink(mem.resolve("sub/outside"), dir);
            }
            return FirecrackerApiPeer.Reply.OK;
        })) {
            assertThatThrownBy(() -> FirecrackerCheckpoint.save(spec, checkpoint, false, vmDir, shape(64),
                    Optional.of(vmm.pid()))).isInstanceOf(KilnException.class)
                    .hasMessage("cannot checkpoint sandbox fcck: Firecracker's checkpoint.mem is not a regular file");
        }
        assertThat(Files.readString(host)).isEqualTo("not the VM's");
        assertThat(checkpoint.resolve("mem")).doesNotExist();
        assertThat(vmm.isAlive()).isTrue();

        // a file of another uid than the VMM's (run/ is its: it cannot have made a file someone else owns)
        Files.setAttribute(vmDir.resolve(VmmJail.RUN), "unix:uid", UID);
        try (FirecrackerApiPeer fc = peer(writesTheSnapshot(1 << 20))) {
            assertThatThrownBy(() -> FirecrackerCheckpoint.save(spec, checkpoint, false, vmDir, shape(64),
                    Optional.of(vmm.pid()))).isInstanceOf(KilnException.class)
                    .hasMessage("cannot checkpoint sandbox fcck: Firecracker's checkpoint.state is owned by uid 0, "
                            + "not the VMM's " + UID);
        }
    }

    @Test
    void firecrackersRefusalResumesTheVmAndIsTheOneLine() throws Exception {
        try (FirecrackerApiPeer fc = peer(call -> call.line().equals("PUT /snapshot/create")
                ? new FirecrackerApiPeer.Reply(400, "Cannot create snapshot: No space left on device (os error 28)")
                : FirecrackerApiPeer.Reply.OK)) {
            assertThatThrownBy(() -> FirecrackerCheckpoint.save(spec, checkpoint, false, vmDir, shape(64),
                    Optional.of(vmm.pid()))).isInstanceOf(KilnException.class)
                    .hasMessage("cannot checkpoint sandbox fcck: firecracker refused PUT /snapshot/create (HTTP 400): "
                            + "Cannot create snapshot: No space left on device (os error 28)");
            assertThat(fc.lines()).containsExactly("PATCH /vm", "PUT /snapshot/create", "PATCH /vm");
        }
        assertThat(vmm.isAlive()).isTrue();
        assertThat(vmDir.resolve(VmCheckpoint.MARKER)).doesNotExist();
    }

    /** {@code kiln pause}/{@code unpause} of a Firecracker VM: PATCH /vm, answered before it returns (was refused). */
    @Test
    void pauseAndUnpauseAreTheApisPatchVm() throws Exception {
        Firecracker firecracker = new Firecracker(Map.of());
        try (FirecrackerApiPeer fc = peer(call -> FirecrackerApiPeer.Reply.OK)) {
            firecracker.pause(vmDir, true);
            firecracker.pause(vmDir, false);
            assertThat(fc.lines()).containsExactly("PATCH /vm", "PATCH /vm");
            assertThat(fc.calls()).extracting(c -> c.body().path("state").asText()).containsExactly("Paused", "Resumed");
            assertThat(fc.problems()).isEmpty();
        }
        assertThatThrownBy(() -> firecracker.pause(vmDir, true)).isInstanceOf(KilnException.class)
                .hasMessageStartingWith("cannot pause the VM: cannot talk to firecracker on "
                        + vmDir.resolve(FirecrackerCommand.API_SOCKET) + " (PATCH /vm)")
                .extracting(e -> ((KilnException) e).kind()).isEqualTo(KilnException.Kind.UNAVAILABLE);
    }

    /** Firecracker resets the guest's vsock connections when it snapshots: a VM left running would lose its channel. */
    @Test
    void leaveRunningIsRefusedBeforeAnythingIsAsked() throws Exception {
        try (FirecrackerApiPeer fc = peer(writesTheSnapshot(1 << 20))) {
            assertThatThrownBy(() -> FirecrackerCheckpoint.save(spec, checkpoint, true, vmDir, shape(64),
                    Optional.of(vmm.pid()))).isInstanceOf(KilnException.class)
                    .hasMessageStartingWith("checkpoints of a Firecracker VM cannot --leave-running: Firecracker "
                            + "resets the guest's vsock connections");
            assertThat(fc.lines()).isEmpty();
        }
        assertThat(vmm.isAlive()).isTrue();
    }

    @Test
    void aCheckpointOfAnotherShapeIsRefusedInOneLine() throws IOException {
        Files.writeString(checkpoint.resolve("shape"), shape(256).text());
        Files.writeString(checkpoint.resolve("state"), "s");
        Files.writeString(checkpoint.resolve("mem"), "m");
        assertThatThrownBy(() -> FirecrackerCheckpoint.check(checkpoint, shape(512))).isInstanceOf(KilnException.class)
                .hasMessage("the checkpoint was made of another VM: memory-mib 256, not 512 (a VM is restored only "
                        + "with the kernel, memory, vCPUs and devices it was saved with)")
                .extracting(e -> ((KilnException) e).kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
        // a QEMU checkpoint's shape is never a Firecracker one
        Files.writeString(checkpoint.resolve("shape"), "format=3\nkernel=/k/vmlinux\nmemory-mib=256\n");
        assertThatThrownBy(() -> FirecrackerCheckpoint.check(checkpoint, shape(256)))
                .hasMessageStartingWith("the checkpoint was made of another VM: format 3, not firecracker-1; ");
        Files.writeString(checkpoint.resolve("shape"), shape(256).text());
        Files.delete(checkpoint.resolve("mem"));
        assertThatThrownBy(() -> FirecrackerCheckpoint.check(checkpoint, shape(256)))
                .hasMessage("the checkpoint in " + checkpoint + " lacks its state or memory file");
    }

    /**
     * The restore through the shipped relay: it sends the load sequence on Firecracker's API socket, in order, sends
     * no START, and takes the guest's new connection (kiln-init connects again after the snapshot's vsock reset) as a
     * started workload whose output it relays.
     */
    @Test
    void theRelayRestoresThroughTheApiThenTakesTheGuestsNewConnectionAsStarted() throws Exception {
        FirecrackerCommand fc = new FirecrackerCommand("kiln-fcck", Path.of("/k/vmlinux"), null,
                dir.resolve("image.erofs"), dir.resolve("disk.ext4"), 64, 1, null);
        Files.write(vmDir.resolve(FirecrackerCommand.REQUESTS_FILE), FirecrackerApi.script(fc.restoreRequests(
                checkpoint.resolve("state"), checkpoint.resolve("mem"))));
        GuestPeer.Relay relay = GuestPeer.Relay.start(ShimBinary.locate(), dir, 30, true, Map.of(), "--api-sock",
                FirecrackerCommand.API_SOCKET, "--api-requests", FirecrackerCommand.REQUESTS_FILE, "--resume");
        try {
            // the relay removes a stale API socket, then starts the VMM, which makes its own: as the peer does here
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (!Files.exists(vmDir.resolve("vmm.pid")) && System.nanoTime() < deadline) Thread.sleep(5);
            try (FirecrackerApiPeer api = peer(call -> FirecrackerApiPeer.Reply.OK);
                 GuestPeer.Guest guest = relay.connect()) {
                assertThat(GuestPeer.read(guest.in()).type()).isEqualTo(GuestPeer.HELLO);
                assertThat(api.lines()).as("all sent before the guest could run").containsExactly("PUT /snapshot/load",
                        "PATCH /drives/image", "PATCH /drives/rw", "PATCH /vm");
                assertThat(api.problems()).isEmpty();
                assertThat(api.calls().get(0).body().path("mem_backend").path("backend_path").asText())
                        .isEqualTo(checkpoint.resolve("mem").toString());
                GuestPeer.send(guest.out(), GuestPeer.STDOUT, 0, "n 10\n");
                GuestPeer.send(guest.out(), GuestPeer.EXIT, 0, "0 0");
                assertThat(GuestPeer.read(guest.in()).type()).as("BYE, and never a START").isEqualTo(GuestPeer.BYE);
                relay.powerOff();
                assertThat(relay.process().waitFor(20, TimeUnit.SECONDS)).isTrue();
            }
            assertThat(relay.process().exitValue()).as(relay.file("stderr")).isZero();
            assertThat(relay.file("stdout")).isEqualTo("n 10\n");
        } finally {
            relay.process().destroyForcibly();
        }
    }
}
