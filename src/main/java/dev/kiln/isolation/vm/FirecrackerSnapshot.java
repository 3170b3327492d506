package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.isolation.shim.ShimBinary;
import dev.kiln.isolation.vm.jail.VmmIds;
import dev.kiln.isolation.vm.jail.VmmJail;
import dev.kiln.rootfs.Trees;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The snapshots Firecracker VMs start from ({@code vm-snapshot: true}, docs/vm.md "Snapshot start", "On Firecracker"):
 * one per shape, made on first need by a template VM booted up to where kiln-init waits for START, then paused and
 * snapshotted through Firecracker's API by the relay ({@code --save-requests}); the files Firecracker wrote in its
 * {@code run/} are taken out as a checkpoint's are ({@link FirecrackerCheckpoint#take}: renamed, then checked where
 * the VMM cannot reach). Kept in {@code ROOT/vm-snapshots/<key>/} ({@code state}, {@code mem}, {@code shape}), a
 * directory only root may enter; the two files root's and read-only to everyone else, since every later VMM of the
 * shape (each its own uid) loads them through a read-only bind: none can write the memory every VM starts from.
 *
 * <p>The drives: {@code PUT /snapshot/load} reopens every drive at the {@code path_on_host} the template had, before
 * any {@code PATCH} can re-point it, the writable one read-write. The template's drives are therefore relative paths
 * ({@link FirecrackerCommand#PLACEHOLDER_IMAGE}, {@link FirecrackerCommand#PLACEHOLDER_RW}), resolved in the VMM's
 * directory, and each restored VM gets its own placeholders there ({@link #placeholders}) before its load.
 */
final class FirecrackerSnapshot {
    private static final KilnLog LOG = KilnLog.of(FirecrackerSnapshot.class);
    /** Never a QEMU snapshot's format, nor a Firecracker checkpoint's. */
    static final String FORMAT = "firecracker-snapshot-1";
    static final String STATE = "state";
    static final String MEM = "mem";
    private static final long PLACEHOLDER = 1L << 20;
    /** Firecracker's state file holds vCPUs and devices (tens of KiB); anything this big is not its. */
    private static final long MAX_STATE = 64L << 20;
    /** After HELLO: the relay's bound for each of the save's two requests (G_SAVE_MS, a full memory write), and more. */
    private static final Duration SAVE_BOUND = Duration.ofSeconds(2 * 300 + 30);

    private FirecrackerSnapshot() {
    }

    /** Launches a template in {@code vmDir} (its drives the placeholders there), jailed as {@code uid} (null: not). */
    interface Template {
        Vmm.Launch launch(Path vmDir, Integer uid);
    }

    /** A shape's fields as its {@code shape} file holds them: a checkpoint's, with this format. */
    static Map<String, String> fields(FirecrackerCheckpoint.Shape shape) {
        Map<String, String> f = shape.fields();
        f.put("format", FORMAT);
        return f;
    }

    static String key(FirecrackerCheckpoint.Shape shape) {
        return ShortHash.of(VmSnapshot.shapeText(fields(shape)), 12);
    }

    /**
     * The state file of {@code shape}'s snapshot under {@code dir}, made first if there is none; one line if the
     * snapshot there was made for another shape.
     */
    static Path ensure(Path dir, FirecrackerCheckpoint.Shape shape, Template template, VmmIds ids,
                       Duration helloTimeout) {
        return VmSnapshot.locked(dir, key(shape), fields(shape), List.of(STATE, MEM),
                snap -> make(snap, shape, template, ids, helloTimeout)).resolve(STATE);
    }

    /** Whether {@code state} is a snapshot's (under {@code vm-snapshots/}), not a checkpoint's. */
    static boolean isSnapshot(Path state) {
        return state != null && state.getParent() != null && state.getParent().getParent() != null
                && state.getParent().getParent().getFileName().toString().equals("vm-snapshots");
    }

    /** The snapshot's memory file beside its state. */
    static Path memOf(Path state) {
        return state.resolveSibling(MEM);
    }

    /**
     * A restored VM's own placeholders in {@code vmDir}, made anew (any file left there is removed first): where the
     * load opens the template's drives. Sparse, never read: the guest binds its disk driver only after START, which
     * comes after the {@code PATCH}es that re-point both drives at the sandbox's disks. One pair per VM, so no two
     * VMMs share a file they may write.
     */
    static List<Path> placeholders(Path vmDir) {
        Path image = vmDir.resolve(FirecrackerCommand.PLACEHOLDER_IMAGE);
        Path rw = vmDir.resolve(FirecrackerCommand.PLACEHOLDER_RW);
        try {
            Files.createDirectories(image.getParent());
            for (Path p : List.of(image, rw)) {
                Files.deleteIfExists(p); // the name: a link there is removed, not followed
                try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
                    f.setLength(PLACEHOLDER);
                }
            }
            Files.setPosixFilePermissions(image, PosixFilePermissions.fromString("rw-r--r--"));
            Files.setPosixFilePermissions(rw, PosixFilePermissions.fromString("rw-------"));
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot make the VM's placeholder drives in " + vmDir
                    + ": " + e.getMessage(), e);
        }
        return List.of(image, rw);
    }

    private static void make(Path snap, FirecrackerCheckpoint.Shape shape, Template template, VmmIds ids,
                             Duration helloTimeout) throws IOException {
        long t0 = System.nanoTime();
        Path tmp = snap.resolveSibling(snap.getFileName() + ".tmp");
        Trees.delete(tmp); // a template a killed kilnd left (its relay and Firecracker ended with it)
        Path vm = tmp.resolve("vm"); // the template's VMM directory: its placeholders, run/, jail
        Files.createDirectories(vm.resolve(VmmJail.RUN));
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwx------"));
        String owner = "snapshot-" + snap.getFileName();
        Integer uid = null;
        Process relay = null;
        try {
            placeholders(vm);
            Files.write(vm.resolve("start.spec"), "arg=true\0".getBytes(StandardCharsets.UTF_8)); // never sent
            Files.write(vm.resolve(FirecrackerCommand.SAVE_REQUESTS_FILE),
                    FirecrackerApi.script(FirecrackerCommand.saveRequests()));
            uid = ids == null ? null : ids.acquire(owner, tmp);
            Vmm.Launch launch = template.launch(vm, uid);
            List<String> cmd = new ArrayList<>(List.of(ShimBinary.locate().toString(), "--relay-vm", "--dir",
                    vm.toString(), "--spec", vm.resolve("start.spec").toString(), "--hello-timeout",
                    Long.toString(Math.max(1, helloTimeout.toSeconds())), "--save-requests",
                    FirecrackerCommand.SAVE_REQUESTS_FILE));
            cmd.addAll(launch.relayOptions());
            cmd.add("--");
            cmd.addAll(launch.argv());
            relay = VmSnapshot.startTemplate(vm, cmd);
            VmSnapshot.awaitTemplate(relay, vm, helloTimeout.plus(SAVE_BOUND));
            // written by the VMM (its uid, in its run/): taken out by rename, then checked out of its reach
            int vmm = (Integer) Files.getAttribute(vm.resolve(VmmJail.RUN), "unix:uid", LinkOption.NOFOLLOW_LINKS);
            try {
                FirecrackerCheckpoint.take(vm.resolve(FirecrackerCommand.TEMPLATE_STATE), tmp.resolve(STATE), vmm,
                        MAX_STATE);
                FirecrackerCheckpoint.take(vm.resolve(FirecrackerCommand.TEMPLATE_MEM), tmp.resolve(MEM), vmm,
                        shape.memoryMiB() << 20);
            } catch (IOException e) {
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot make the VM snapshot: " + e.getMessage(),
                        e);
            }
            // read by every later VMM of the shape (each its own uid) through a read-only bind; written by none
            for (Path p : List.of(tmp.resolve(STATE), tmp.resolve(MEM))) {
                Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rw-r--r--"));
            }
            Files.writeString(tmp.resolve("shape"), VmSnapshot.shapeText(fields(shape)));
            if (uid != null) {
                ids.release(owner, tmp);
                uid = null;
            }
            Trees.delete(vm);
            Files.move(tmp, snap, StandardCopyOption.ATOMIC_MOVE);
            LOG.info("made the Firecracker VM snapshot " + snap + " (" + shape.memoryMiB() + " MiB, " + shape.vcpus()
                    + " vCPU) in " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while making the VM snapshot");
        } finally {
            VmSnapshot.endTemplate(tmp, relay, uid == null ? null : ids, owner);
        }
    }
}
