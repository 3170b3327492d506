package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.vm.jail.VmmJail;
import dev.kiln.rootfs.Trees;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/**
 * A checkpoint of a running Firecracker VM (docs/checkpoint.md, "Firecracker"), through its snapshot API: the VM
 * paused ({@code PATCH /vm}), a full snapshot ({@code PUT /snapshot/create}) written by Firecracker into its own
 * {@code run/} (the only directory its jailed uid may write), then taken by kiln into the checkpoint's directory as
 * {@code state} and {@code mem}, beside a sparse copy of the writable disk (taken while paused, as for QEMU:
 * {@link VmCheckpoint}) and the {@link Shape}. Restored by a Firecracker given nothing but {@code PUT /snapshot/load}
 * ({@link FirecrackerCommand#restoreRequests}).
 *
 * <p>The files come from a directory the VMM controls, so kiln takes them without ever following what the VMM could
 * put there: each is renamed (rename(2) moves a name, never what a link points to) into kiln's own directory, and only
 * there checked — a regular file, one link, the VMM's uid, no bigger than it can be — before it is made root's 0600.
 * Anything else is deleted (its name, in kiln's directory) and the checkpoint refused.
 */
final class FirecrackerCheckpoint {
    static final String STATE = "state";
    static final String MEM = "mem";
    private static final Duration API_TIMEOUT = Duration.ofSeconds(10);
    /** A full snapshot writes the whole guest memory: seconds per GiB on a slow disk. */
    private static final Duration SAVE_TIMEOUT = Duration.ofSeconds(300);
    /** Firecracker's state file holds vCPUs and devices (tens of KiB); anything this big is not its. */
    private static final long MAX_STATE = 64L << 20;

    private FirecrackerCheckpoint() {
    }

    /**
     * What a Firecracker snapshot is valid for: kernel and initramfs (the guest's code in its memory), memory size and
     * vCPUs as Firecracker gets them, the card (a device), and the Firecracker binary (its state format).
     */
    record Shape(Path kernel, long kernelSize, long kernelMtime, Path initrd, long initrdSize, long memoryMiB,
                 int vcpus, boolean nic, Path firecracker, long binarySize, long binaryMtime) {

        static Shape of(Vmm.Machine m, Path firecracker) {
            try {
                Path bin = firecracker.toRealPath();
                int vcpus = FirecrackerApi.machineConfig(m.cpus(), m.memoryMiB()).body().path("vcpu_count").asInt();
                return new Shape(m.kernel().toAbsolutePath(), Files.size(m.kernel()),
                        Files.getLastModifiedTime(m.kernel()).toMillis(), m.initrd().toAbsolutePath(),
                        Files.size(m.initrd()), m.memoryMiB(), vcpus, m.nic() != null, bin, Files.size(bin),
                        Files.getLastModifiedTime(bin).toMillis());
            } catch (IOException e) {
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot read the VM's files for its checkpoint: "
                        + e.getMessage(), e);
            }
        }

        /** As the {@code shape} file holds it, one {@code key=value} a line; never equal to a QEMU shape. */
        Map<String, String> fields() {
            Map<String, String> f = VmSnapshot.guestFields("firecracker-1", kernel, kernelSize, kernelMtime, initrd,
                    initrdSize, memoryMiB, vcpus, nic);
            f.put("firecracker", firecracker + " " + binarySize + " " + binaryMtime);
            return f;
        }

        String text() {
            return VmSnapshot.shapeText(fields());
        }
    }

    /**
     * Saves the VM of {@code spec} into {@code dir} and ends its run ({@code vmmPid} killed once the checkpoint is
     * complete, after the relay's {@link VmCheckpoint#MARKER}); on any failure the VM is resumed and the files
     * Firecracker wrote are removed.
     */
    static void save(SandboxSpec spec, Path dir, boolean leaveRunning, Path vmDir, Shape shape, Optional<Long> vmmPid) {
        if (leaveRunning) {
            // Firecracker resets every vsock connection of the guest when it snapshots (its docs, "Vsock device
            // reset"); the relay takes one guest connection per run, so a VM left running would lose its channel
            throw KilnException.invalid("checkpoints of a Firecracker VM cannot --leave-running: Firecracker resets "
                    + "the guest's vsock connections when it snapshots, and the running VM would lose kiln's channel "
                    + "(use --runtime qemu, or checkpoint without --leave-running)");
        }
        Path run = vmDir.resolve(VmmJail.RUN);
        Path state = vmDir.resolve(FirecrackerCommand.CHECKPOINT_STATE);
        Path mem = vmDir.resolve(FirecrackerCommand.CHECKPOINT_MEM);
        Path socket = vmDir.resolve(FirecrackerCommand.API_SOCKET);
        boolean complete = false;
        try {
            int owner = (Integer) Files.getAttribute(run, "unix:uid", LinkOption.NOFOLLOW_LINKS);
            removeName(state);
            removeName(mem);
            new FirecrackerApi(socket, API_TIMEOUT).send(FirecrackerApi.vmState(true));
            try {
                // relative: Firecracker's working directory is vm/, in its jail as outside
                new FirecrackerApi(socket, SAVE_TIMEOUT).send(FirecrackerApi.snapshotCreate(
                        Path.of(FirecrackerCommand.CHECKPOINT_STATE), Path.of(FirecrackerCommand.CHECKPOINT_MEM)));
                take(state, dir.resolve(STATE), owner, MAX_STATE);
                take(mem, dir.resolve(MEM), owner, shape.memoryMiB() << 20);
                VmCheckpoint.copySparse(spec.dir().resolve("disk.ext4"), dir.resolve("disk.ext4"));
                Files.writeString(dir.resolve("shape"), shape.text());
                complete = true;
            } finally {
                if (complete) {
                    Files.writeString(vmDir.resolve(VmCheckpoint.MARKER), ""); // the relay ends the run 0
                    vmmPid.ifPresent(pid -> VmIsolator.killAndWait(pid, FirecrackerCommand.BINARY));
                } else {
                    removeName(state);
                    removeName(mem);
                    try {
                        new FirecrackerApi(socket, API_TIMEOUT).send(FirecrackerApi.vmState(false));
                    } catch (KilnException e) {
                        // the failure that got here is the one to report; the VM stays paused (kiln stop ends it)
                    }
                }
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot checkpoint sandbox " + spec.name() + ": "
                    + e.getMessage(), e);
        } catch (KilnException e) {
            if (e.kind() != KilnException.Kind.INTERNAL || e.getMessage().startsWith("cannot checkpoint")) throw e;
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot checkpoint sandbox " + spec.name() + ": "
                    + e.getMessage(), e);
        }
    }

    /** The checkpoint's state file, if it was made for {@code shape} and holds its memory; else one line. */
    static Path check(Path dir, Shape shape) {
        Path state = VmCheckpoint.check(dir, shape.fields());
        if (!Files.isRegularFile(state, LinkOption.NOFOLLOW_LINKS)
                || !Files.isRegularFile(dir.resolve(MEM), LinkOption.NOFOLLOW_LINKS)) {
            throw KilnException.corrupt("the checkpoint in " + dir + " lacks its state or memory file");
        }
        return state;
    }

    /**
     * Moves the VMM's file {@code from} to {@code to} in kiln's directory, then checks it there, where the VMM cannot
     * reach: a regular file of one link, owned by {@code owner}, at most {@code max} bytes; made root's 0600.
     */
    static void take(Path from, Path to, int owner, long max) throws IOException {
        if (!Files.exists(from, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException("Firecracker did not write " + from.getFileName());
        }
        Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        PosixFileAttributes a = Files.readAttributes(to, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        int uid = (Integer) Files.getAttribute(to, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        int links = (Integer) Files.getAttribute(to, "unix:nlink", LinkOption.NOFOLLOW_LINKS);
        String wrong = !a.isRegularFile() ? "not a regular file" : links != 1 ? links + " links to it"
                : uid != owner ? "owned by uid " + uid + ", not the VMM's " + owner
                : a.size() > max ? a.size() + " bytes, more than " + max : null;
        if (wrong != null) {
            Trees.delete(to); // in kiln's directory: a link is removed, never followed; a directory the VMM made too
            throw new IOException("Firecracker's " + from.getFileName() + " is " + wrong);
        }
        Files.setAttribute(to, "unix:uid", 0, LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(to, "unix:gid", 0, LinkOption.NOFOLLOW_LINKS);
        Files.getFileAttributeView(to, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
                .setPermissions(PosixFilePermissions.fromString("rw-------"));
    }

    /** Removes a name in the VMM's directory (unlink(2): a link there is removed, not followed). */
    private static void removeName(Path p) throws IOException {
        Files.deleteIfExists(p);
    }
}
