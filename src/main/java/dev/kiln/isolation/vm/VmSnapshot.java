package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.isolation.shim.ShimBinary;
import dev.kiln.isolation.vm.jail.VmmIds;
import dev.kiln.isolation.vm.jail.VmmJail;
import dev.kiln.rootfs.Trees;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The snapshots QEMU VMs start from (docs/vm.md, "Snapshot start"): one per VM shape, made lazily by booting a template
 * guest (kernel + kiln-init, the shape's memory, vCPUs and devices, placeholder disks) up to where kiln-init waits for
 * START, then saving the stopped VM's state to a file (the relay's {@code --save-to}: QMP {@code migrate fd:}). Kept in
 * {@code ROOT/vm-snapshots/<key>/} ({@code state}, {@code shape}), the key a digest of the shape; made under a lock,
 * in a {@code .tmp} directory renamed into place, so a kilnd killed while it makes one leaves at most that directory,
 * which the next attempt removes. The template is jailed like any VMM, and dies with the kilnd that started it.
 */
final class VmSnapshot {
    private static final KilnLog LOG = KilnLog.of(VmSnapshot.class);
    /** The template's card: only there so the device exists; every restored VM's guest takes its own MAC. */
    static final String TEMPLATE_MAC = "02:6b:69:6c:6e:00";
    /** Bumped when what kiln puts in a template changes (devices, kiln-init's wait point), so old snapshots go unused. */
    private static final String FORMAT = "3";
    /** The guest's memory of the template (sparse: zero pages are holes); the state file holds only the devices'. */
    static final String RAM = "ram";
    private static final Map<Path, Object> LOCKS = new ConcurrentHashMap<>();

    private VmSnapshot() {
    }

    /** The fields every VMM's shape starts with (QEMU's {@link Shape}, {@link FirecrackerCheckpoint.Shape}): the guest's. */
    static Map<String, String> guestFields(String format, Path kernel, long kernelSize, long kernelMtime, Path initrd,
                                           long initrdSize, long memoryMiB, int cpus, boolean nic) {
        Map<String, String> f = new LinkedHashMap<>();
        f.put("format", format);
        f.put("kernel", kernel.toString());
        f.put("kernel-size", Long.toString(kernelSize));
        f.put("kernel-mtime", Long.toString(kernelMtime));
        f.put("initrd", initrd.toString());
        f.put("initrd-size", Long.toString(initrdSize));
        f.put("memory-mib", Long.toString(memoryMiB));
        f.put("cpus", Integer.toString(cpus));
        f.put("nic", Boolean.toString(nic));
        return f;
    }

    /** A shape as its {@code shape} file holds it: one {@code key=value} a line. */
    static String shapeText(Map<String, String> fields) {
        StringBuilder b = new StringBuilder();
        fields.forEach((k, v) -> b.append(k).append('=').append(v).append('\n'));
        return b.toString();
    }

    /**
     * What a snapshot is valid for: everything of the VM that its state depends on. Two VMs of one shape restore the
     * same state; anything else is another snapshot.
     *
     * @param kernel the kernel file QEMU boots (kiln's cached vmlinux or the bzImage), with its size and mtime
     * @param nic    with a network card (a device of its own on the bus), or none
     * @param tscKhz the template's {@code tsc_early_khz}: not part of the key (only the template's boot reads it,
     *               and a host's "cpu MHz" may wander)
     */
    record Shape(Path kernel, long kernelSize, long kernelMtime, Path initrd, long initrdSize, long memoryMiB,
                 int cpus, boolean nic, boolean kvm, long tscKhz, Path qemu, long qemuSize, long qemuMtime) {

        static Shape of(Path kernel, Path initrd, long memoryMiB, int cpus, boolean nic, boolean kvm, long tscKhz,
                        Path qemu) {
            try {
                Path q = qemu.toRealPath();
                return new Shape(kernel.toAbsolutePath(), Files.size(kernel), Files.getLastModifiedTime(kernel)
                        .toMillis(), initrd.toAbsolutePath(), Files.size(initrd), memoryMiB, cpus, nic, kvm, tscKhz,
                        q, Files.size(q), Files.getLastModifiedTime(q).toMillis());
            } catch (IOException e) {
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot read the VM's files for its snapshot: "
                        + e.getMessage(), e);
            }
        }

        /** The shape as the {@code shape} file holds it: one {@code key=value} a line. */
        Map<String, String> fields() {
            Map<String, String> f = guestFields(FORMAT, kernel, kernelSize, kernelMtime, initrd, initrdSize, memoryMiB,
                    cpus, nic);
            f.put("accel", kvm ? "kvm" : "tcg");
            f.put("qemu", qemu + " " + qemuSize + " " + qemuMtime);
            return f;
        }

        String text() {
            return shapeText(fields());
        }

        String key() {
            return ShortHash.of(text(), 12);
        }
    }

    /** Makes the template's QEMU command line and jail; the same as a sandbox's but for its placeholders. */
    interface Template {
        Vmm.Launch launch(Path vmDir, Path image, Path disk, Integer jailUid);
    }

    /**
     * The state file of {@code shape}'s snapshot under {@code dir}, made first if there is none (under a lock: one
     * template per shape at a time). A snapshot whose recorded shape is not {@code shape} is refused with one line.
     */
    static Path ensure(Path dir, Shape shape, Template template, VmmIds ids, Duration helloTimeout, long diskBytes) {
        return locked(dir, shape.key(), shape.fields(), List.of("state", RAM),
                snap -> make(snap, shape, template, ids, helloTimeout, diskBytes)).resolve("state");
    }

    /** Makes a snapshot's files in {@code snap} (QEMU's template boot and save, or Firecracker's). */
    interface Maker {
        void make(Path snap) throws IOException;
    }

    /**
     * The snapshot directory {@code dir/key}, made first by {@code maker} where any of {@code files} is missing (under a
     * lock: one template per shape at a time), then checked: one line where its recorded shape is not {@code fields}.
     */
    static Path locked(Path dir, String key, Map<String, String> fields, List<String> files, Maker maker) {
        Path snap = dir.resolve(key);
        Object jvmLock = LOCKS.computeIfAbsent(snap, k -> new Object());
        synchronized (jvmLock) {
            try {
                Files.createDirectories(dir);
                try (FileChannel ch = FileChannel.open(dir.resolve(key + ".lock"), StandardOpenOption.CREATE,
                        StandardOpenOption.WRITE); FileLock ignored = ch.lock()) {
                    if (!files.stream().allMatch(f -> Files.isRegularFile(snap.resolve(f)))) {
                        Trees.delete(snap); // a snapshot of an older format, or half of one
                        maker.make(snap);
                    }
                    checked(snap, fields);
                    return snap;
                }
            } catch (IOException e) {
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot make the VM snapshot in " + snap + ": "
                        + e.getMessage(), e);
            }
        }
    }

    /** The memory file beside a snapshot's state file; null for anything else (a checkpoint's state holds its memory). */
    static Path ramOf(Path state) {
        if (state == null) return null;
        Path ram = state.resolveSibling(RAM);
        return state.getParent() != null && state.getParent().getParent() != null
                && state.getParent().getParent().getFileName().toString().equals("vm-snapshots")
                && Files.isRegularFile(ram) ? ram : null;
    }

    /** The snapshot's state file, if what it was made for is {@code shape}; else one line saying what differs. */
    static Path checked(Path snap, Shape shape) {
        checked(snap, shape.fields());
        return snap.resolve("state");
    }

    /** Throws one line saying what differs where the snapshot in {@code snap} was not made for {@code fields}. */
    static void checked(Path snap, Map<String, String> fields) {
        Map<String, String> made = new LinkedHashMap<>();
        try {
            for (String line : Files.readAllLines(snap.resolve("shape"))) {
                int eq = line.indexOf('=');
                if (eq > 0) made.put(line.substring(0, eq), line.substring(eq + 1));
            }
        } catch (IOException e) {
            throw KilnException.invalid("the VM snapshot in " + snap + " has no readable shape (" + e.getMessage()
                    + "); remove that directory and kiln makes a new one");
        }
        List<String> differs = new ArrayList<>();
        fields.forEach((k, v) -> {
            if (!v.equals(made.get(k))) differs.add(k + " " + made.getOrDefault(k, "(none)") + ", not " + v);
        });
        if (!differs.isEmpty()) {
            throw KilnException.invalid("the VM snapshot in " + snap + " was made for another VM: "
                    + String.join("; ", differs) + " (kiln restores a snapshot only into a VM of its kernel, memory, "
                    + "vCPUs and devices; remove that directory and kiln makes a new one)");
        }
    }

    /** Starts a template's relay ({@code cmd}), its output in {@code vmDir/relay.log}. */
    static Process startTemplate(Path vmDir, List<String> cmd) throws IOException {
        return new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectErrorStream(true).redirectOutput(vmDir.resolve("relay.log").toFile()).start();
    }

    /** Waits at most {@code bound} for a template's relay to save it; one line, its last, if it did not end 0. */
    static void awaitTemplate(Process relay, Path vmDir, Duration bound) throws IOException, InterruptedException {
        if (!relay.waitFor(bound.toSeconds(), TimeUnit.SECONDS)) {
            relay.destroyForcibly();
            relay.waitFor(5, TimeUnit.SECONDS);
            throw new KilnException(KilnException.Kind.INTERNAL, "making the VM snapshot took too long (see " + vmDir
                    + "/boot.log)");
        }
        if (relay.exitValue() != 0) {
            String why = Files.readAllLines(vmDir.resolve("relay.log")).stream().filter(l -> !l.isBlank())
                    .reduce((a, b) -> b).orElse("exit " + relay.exitValue());
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot make the VM snapshot: "
                    + why.replaceFirst("^kiln: ", ""));
        }
    }

    private static void make(Path snap, Shape shape, Template template, VmmIds ids, Duration helloTimeout,
                             long diskBytes) throws IOException {
        long t0 = System.nanoTime();
        Path tmp = snap.resolveSibling(snap.getFileName() + ".tmp");
        Trees.delete(tmp); // a template a killed kilnd left (its relay and QEMU ended with it)
        Files.createDirectories(tmp.resolve(VmmJail.RUN));
        String owner = "snapshot-" + shape.key();
        Integer uid = null;
        Process relay = null;
        try {
            Path image = tmp.resolve("image.placeholder");
            Path disk = tmp.resolve("disk.placeholder");
            // sparse, of the sizes most sandboxes' disks have: the template's kernel binds virtio_blk to them (QEMU's
            // kiln.early-blk), so a restored VM whose disks have these sizes is spared their probe (kiln-init's
            // early_disk); the guest reads only their first blocks (the partition scan), and drops them after START
            for (Path p : List.of(image, disk)) {
                try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
                    f.setLength(p.equals(image) ? ImageDisk.SPAN : diskBytes);
                }
            }
            Files.write(tmp.resolve("start.spec"), "arg=true\0".getBytes(StandardCharsets.UTF_8)); // never sent
            uid = ids == null ? null : ids.acquire(owner, tmp);
            Vmm.Launch launch = template.launch(tmp, image, disk, uid);
            List<String> cmd = new ArrayList<>(List.of(ShimBinary.locate().toString(), "--relay-vm", "--dir",
                    tmp.toString(), "--spec", tmp.resolve("start.spec").toString(), "--hello-timeout",
                    Long.toString(Math.max(1, helloTimeout.toSeconds())), "--save-to", tmp.resolve("state").toString(),
                    "--qmp-sock", QemuCommand.QMP_SOCKET));
            cmd.addAll(launch.relayOptions());
            cmd.add("--");
            cmd.addAll(launch.argv());
            relay = startTemplate(tmp, cmd);
            awaitTemplate(relay, tmp, helloTimeout.multipliedBy(2).plusSeconds(30));
            if (!Files.isRegularFile(tmp.resolve("state"))) {
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot make the VM snapshot: no state written");
            }
            Files.writeString(tmp.resolve("shape"), shape.text());
            for (Path p : List.of(image, disk, tmp.resolve("start.spec"))) Files.deleteIfExists(p);
            if (uid != null) {
                ids.release(owner, tmp);
                uid = null;
            }
            Files.move(tmp, snap, StandardCopyOption.ATOMIC_MOVE);
            LOG.info("made the VM snapshot " + snap + " (" + shape.memoryMiB() + " MiB, " + shape.cpus()
                    + " vCPU" + (shape.nic() ? ", a network card" : "") + ") in "
                    + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            if (relay != null) relay.destroyForcibly();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while making the VM snapshot");
        } finally {
            VmSnapshot.endTemplate(tmp, relay, uid == null ? null : ids, owner);
        }
    }

    /**
     * A template's end, made or not: while its directory {@code tmp} is still there (it failed before the rename), its
     * relay is killed and the directory removed; its uid given back if still held ({@code ids} non-null).
     */
    static void endTemplate(Path tmp, Process relay, VmmIds ids, String owner) {
        if (Files.exists(tmp)) {
            if (relay != null && relay.isAlive()) relay.destroyForcibly();
            Trees.delete(tmp);
        }
        if (ids != null) ids.release(owner, tmp);
    }
}
