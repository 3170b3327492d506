package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.shim.ShimBinary;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A checkpoint of a running QEMU VM (docs/checkpoint.md): in its directory {@code state} (QEMU's migration stream of
 * the stopped VM: memory, vCPUs, devices; written by {@code kiln-shim --vm-save}, the template save of
 * {@link VmSnapshot} without its quit), {@code disk.ext4} (a sparse copy of the writable disk taken while the VM is
 * stopped: the guest's page cache and ext4 journal in {@code state} describe exactly that disk, so the checkpoint
 * carries it and every restore puts it back) and {@code shape} (what the state is valid for, {@link VmSnapshot.Shape}).
 */
final class VmCheckpoint {
    /** In the VM's directory once the state is complete: the relay ends the run 0 and quiet when QEMU quits. */
    static final String MARKER = "checkpointed";
    private static final long SAVE_TIMEOUT_SECONDS = 300;

    private VmCheckpoint() {
    }

    static void save(SandboxSpec spec, Path dir, boolean leaveRunning, Qemu qemu, Path vmDir, Vmm.Machine machine) {
        VmSnapshot.Shape shape = qemu.shape(machine);
        qemu.pause(vmDir, true); // QMP stop: every vCPU still, so memory and disk are one moment's
        boolean saved = false;
        try {
            Process p = new ProcessBuilder(ShimBinary.locate().toString(), "--vm-save", "--qmp-sock",
                    QemuCommand.QMP_SOCKET, "--to", dir.resolve("state").toString(), "--timeout",
                    Long.toString(SAVE_TIMEOUT_SECONDS))
                    .directory(vmDir.toFile()) // the socket's path is relative: a long one exceeds sun_path
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(SAVE_TIMEOUT_SECONDS + 10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new KilnException(KilnException.Kind.INTERNAL, "saving the VM of " + spec.name()
                        + " took too long");
            }
            if (p.exitValue() != 0) {
                throw new KilnException(KilnException.Kind.INTERNAL, out.lines().filter(l -> !l.isBlank())
                        .reduce((a, b) -> b).orElse("kiln-shim --vm-save: exit " + p.exitValue())
                        .replaceFirst("^kiln: ", "cannot checkpoint sandbox " + spec.name() + ": "));
            }
            copySparse(spec.dir().resolve("disk.ext4"), dir.resolve("disk.ext4"));
            Files.writeString(dir.resolve("shape"), shape.text());
            saved = true;
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot checkpoint sandbox " + spec.name() + ": "
                    + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while checkpointing " + spec.name());
        } finally {
            if (saved && !leaveRunning) {
                try {
                    Files.writeString(vmDir.resolve(MARKER), "");
                } catch (IOException e) {
                    // the relay then reports the VM's end as unexpected; the checkpoint itself is complete
                }
                qemu.quit(vmDir);
            } else {
                qemu.pause(vmDir, false); // left running, or a failed checkpoint: the VM goes on as before
            }
        }
    }

    /** The checkpoint's state file, if it was made for a VM of {@code shape}; else one line saying what differs. */
    static Path check(Path dir, VmSnapshot.Shape shape) {
        return check(dir, shape.fields());
    }

    /** The same for a shape as its {@code key=value} fields (Firecracker's: {@link FirecrackerCheckpoint.Shape}). */
    static Path check(Path dir, Map<String, String> shape) {
        Map<String, String> made = new LinkedHashMap<>();
        try {
            for (String line : Files.readAllLines(dir.resolve("shape"))) {
                int eq = line.indexOf('=');
                if (eq > 0) made.put(line.substring(0, eq), line.substring(eq + 1));
            }
        } catch (IOException e) {
            throw KilnException.corrupt("the checkpoint in " + dir + " has no readable shape: " + e.getMessage());
        }
        List<String> differs = new ArrayList<>();
        shape.forEach((k, v) -> {
            if (!v.equals(made.get(k))) differs.add(k + " " + made.getOrDefault(k, "(none)") + ", not " + v);
        });
        if (!differs.isEmpty()) {
            throw KilnException.invalid("the checkpoint was made of another VM: " + String.join("; ", differs)
                    + " (a VM is restored only with the kernel, memory, vCPUs and devices it was saved with)");
        }
        return dir.resolve("state");
    }

    /** The checkpoint's disk back in place of the sandbox's (copied: the checkpoint can be restored again). */
    static void restoreDisk(Path dir, Path disk) {
        Path tmp = disk.resolveSibling(disk.getFileName() + ".restore");
        try {
            copySparse(dir.resolve("disk.ext4"), tmp);
            Files.move(tmp, disk, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot put the checkpoint's disk back: "
                    + e.getMessage(), e);
        } finally {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException e) {
                // left for the sandbox's removal
            }
        }
    }

    /** {@code cp --sparse=always}: only the blocks the guest wrote take room (the disk is GiBs, mostly holes). */
    static void copySparse(Path from, Path to) throws IOException {
        try {
            Process p = new ProcessBuilder("cp", "--sparse=always", "--", from.toString(), to.toString())
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw new IOException("copying " + from + ": " + (out.isEmpty() ? "cp failed" : out));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while copying " + from);
        }
    }
}
