package dev.kiln.isolation.vm;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The Firecracker VMM of one sandbox: the {@code firecracker --api-sock SOCKET --id ID} process, and the API requests
 * that configure and boot it (docs/vm.md "Firecracker"). Firecracker boots only an uncompressed ELF kernel
 * ({@link Vmlinux}) and needs KVM; kiln's control channel is its hybrid vsock instead of QEMU's virtio-serial port.
 * Paths are relative to the sandbox's {@code vm/} directory, where the process runs, as for QEMU.
 *
 * @param id  a Firecracker instance id ({@code [A-Za-z0-9-]}, at most 64 characters)
 * @param nic the network card on the kiln bridge (its TAP in the sandbox's namespace), null for none
 */
record FirecrackerCommand(String id, Path vmlinux, Path initrd, Path imageDisk, Path writableDisk, long memoryMiB,
                          int cpus, GuestNic nic) {

    static final String BINARY = "firecracker";
    /** In {@code run/}, the VMM's own directory (its uid's in the jail), as QEMU's sockets are. */
    static final String API_SOCKET = "run/firecracker.sock";
    static final String VSOCK_SOCKET = "run/vsock.sock";
    /** The guest's vsock port kiln-init connects to (the relay listens on {@code run/vsock.sock_1024}). */
    static final int CONTROL_PORT = 1024;
    static final int GUEST_CID = 3;
    /** The boot sequence as the relay sends it ({@link FirecrackerApi#script}). */
    static final String REQUESTS_FILE = "boot.http";
    private static final String NETDEV = "net0";
    /**
     * Where a checkpoint's snapshot is written ({@code PUT /snapshot/create}): in {@code run/}, the one directory the
     * jailed VMM may write, from which kiln takes the files into the checkpoint ({@link FirecrackerCheckpoint}).
     */
    static final String CHECKPOINT_STATE = "run/checkpoint.state";
    static final String CHECKPOINT_MEM = "run/checkpoint.mem";
    /**
     * A snapshot template's drives, and every VM restored from it (docs/vm.md, "Snapshot start", "On Firecracker"):
     * relative, so that {@code PUT /snapshot/load}, which reopens each drive at the path the template had before any
     * {@code PATCH}, finds the restored VM's own placeholder there (its directory is the VMM's working directory).
     */
    static final Path PLACEHOLDER_IMAGE = Path.of("drives/image");
    static final Path PLACEHOLDER_RW = Path.of("drives/rw");
    /** Where a template's snapshot is written, as a checkpoint's: in {@code run/}, taken out by kiln. */
    static final String TEMPLATE_STATE = "run/snapshot.state";
    static final String TEMPLATE_MEM = "run/snapshot.mem";
    /** The template's save, sent by the relay once kiln-init answered HELLO ({@code --save-requests}). */
    static final String SAVE_REQUESTS_FILE = "save.http";

    FirecrackerCommand {
        if (!id.matches("[A-Za-z0-9-]{1,64}")) throw new IllegalArgumentException("bad firecracker id " + id);
        if (nic != null && nic.netns() == null) { // VmIsolator.create refuses --network user with one line first
            throw new IllegalArgumentException("firecracker has no user-mode network, only a TAP");
        }
    }

    List<String> argv() {
        return argv(Path.of(BINARY));
    }

    /** The command line with {@code binary} as the program (the path {@link Firecracker} found). */
    List<String> argv(Path binary) {
        return List.of(binary.toString(), "--api-sock", API_SOCKET, "--id", id);
    }

    /** The unix socket Firecracker forwards the guest's connection to port {@link #CONTROL_PORT} to. */
    static String controlSocket() {
        return VSOCK_SOCKET + "_" + CONTROL_PORT;
    }

    /**
     * Kernel messages go to the serial console, which is Firecracker's stdout; {@code reboot=k}: a reboot ends it (it
     * has no power-off, so kiln-init reboots on this transport); the i8042 flags skip probing a keyboard controller
     * Firecracker only half emulates (as its own default command line does); {@code kiln.channel} tells kiln-init to
     * use the vsock transport (docs/guest-protocol.md); {@code kiln.disks=fs}: tell the disks apart by their
     * filesystems (erofs image, ext4 writable), since Firecracker's drives have no serial to give, unlike QEMU's.
     */
    String bootArgs() {
        return "console=ttyS0 reboot=k panic=-1 pci=off quiet i8042.noaux i8042.nomux i8042.dumbkbd kiln.channel=vsock:"
                + CONTROL_PORT + " kiln.disks=fs";
    }

    /**
     * The template of a snapshot: booted as a sandbox's VM but for {@code kiln.snapshot} (kiln-init loads the disk and
     * network drivers bound to no device, and answers a second HELLO after a restore) and {@code init_on_free=1} (freed
     * pages zeroed: less of the template's boot in its memory), as QEMU's template.
     */
    String templateBootArgs() {
        return bootArgs() + " kiln.snapshot init_on_free=1";
    }

    /**
     * The template's boot sequence: {@link #requests} with {@link #templateBootArgs}, and its drives at the relative
     * placeholder paths (the files in the template's directory now, in each restored VM's later); {@code card}: with
     * a network card (this command has no {@link GuestNic}: the template has no sandbox).
     */
    List<FirecrackerApi.Request> templateRequests(boolean card) {
        List<FirecrackerApi.Request> r = new ArrayList<>(requests());
        // a shape with a card: the template's on the TAP its relay makes in its own namespace (--jail-tap), the MAC
        // a placeholder (each restored guest takes START's), the MTU left to the guest as every VM's is set at START
        if (card) r.add(4, FirecrackerApi.networkInterface(NETDEV, GuestNic.TAP, VmSnapshot.TEMPLATE_MAC, 0));
        r.set(1, FirecrackerApi.bootSource(vmlinux, templateBootArgs(), initrd));
        r.set(2, FirecrackerApi.drive("image", PLACEHOLDER_IMAGE.toString(), true));
        r.set(3, FirecrackerApi.drive("rw", PLACEHOLDER_RW.toString(), false));
        return r;
    }

    /** What saves the template once kiln-init waits for START: its vCPUs stopped, then a full snapshot into run/. */
    static List<FirecrackerApi.Request> saveRequests() {
        return List.of(FirecrackerApi.vmState(true),
                FirecrackerApi.snapshotCreate(Path.of(TEMPLATE_STATE), Path.of(TEMPLATE_MEM)));
    }

    /** The files it boots from, which its jail binds read-only: the kernel and the initramfs. */
    List<Path> bootFiles() {
        return initrd == null ? List.of(vmlinux) : List.of(vmlinux, initrd);
    }

    /**
     * The requests that restore the VM from a snapshot's {@code state} and {@code mem} instead of booting it, in the
     * order they are sent: the load first (Firecracker accepts it only on a process given nothing else), the VM left
     * paused; then its drives re-pointed at this sandbox's disks ({@code PATCH}, post-boot: a loaded VM counts as
     * booted), the card backed by this sandbox's TAP (in the load: the spec has no post-boot way), and only then its
     * vCPUs run. No boot source, machine config, drive or vsock {@code PUT}: all of it is the snapshot's.
     */
    List<FirecrackerApi.Request> restoreRequests(Path state, Path mem) {
        List<FirecrackerApi.Request> r = new ArrayList<>();
        r.add(FirecrackerApi.snapshotLoad(state, mem, NETDEV, nic == null ? null : GuestNic.TAP, Path.of(VSOCK_SOCKET)));
        r.add(FirecrackerApi.driveFile("image", imageDisk));
        r.add(FirecrackerApi.driveFile("rw", writableDisk));
        r.add(FirecrackerApi.vmState(false));
        return r;
    }

    /** The requests that configure the VM, then the one that starts it, in the order they are sent. */
    List<FirecrackerApi.Request> requests() {
        List<FirecrackerApi.Request> r = new ArrayList<>();
        r.add(FirecrackerApi.machineConfig(cpus, memoryMiB));
        r.add(FirecrackerApi.bootSource(vmlinux, bootArgs(), initrd));
        r.add(FirecrackerApi.drive("image", imageDisk, true));
        r.add(FirecrackerApi.drive("rw", writableDisk, false));
        if (nic != null) r.add(FirecrackerApi.networkInterface(NETDEV, GuestNic.TAP, nic.mac(), nic.mtu()));
        r.add(FirecrackerApi.vsock(GUEST_CID, Path.of(VSOCK_SOCKET)));
        r.add(FirecrackerApi.action(FirecrackerApi.Action.InstanceStart));
        return r;
    }
}
