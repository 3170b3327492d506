package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.OwnerOnly;
import dev.kiln.isolation.Availability;
import dev.kiln.isolation.FileCopy;
import dev.kiln.isolation.GuestKernels;
import dev.kiln.isolation.Isolation;
import dev.kiln.isolation.Isolator;
import dev.kiln.isolation.SandboxNetwork;
import dev.kiln.isolation.SandboxOptions;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.SandboxTask;
import dev.kiln.isolation.oci.MemoryCgroup;
import dev.kiln.isolation.oci.PidsCgroup;
import dev.kiln.isolation.shim.Shim;
import dev.kiln.isolation.shim.ShimBinary;
import dev.kiln.isolation.shim.ShimOptions;
import dev.kiln.isolation.vm.jail.JailRecord;
import dev.kiln.isolation.vm.jail.VmmIds;
import dev.kiln.rootfs.Trees;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The {@code vm} isolation (docs/vm.md): the image's tree as a shared read-only erofs disk, a writable ext4 disk per
 * sandbox, the host's kernel with an initramfs of kiln-init and the modules it needs, on a {@link Vmm}: QEMU
 * {@code microvm}, or Firecracker with {@code --runtime firecracker}. The main process is the VMM under kiln-shim,
 * through kiln-shim's VM relay, which maps the guest's main process onto the shim's stdio; signals and execs travel
 * over the guest protocol (docs/guest-protocol.md). The two VMMs differ only in what the relay is told.
 *
 * <p>In the sandbox's directory: {@code main/} (the shim), {@code vm/} (the relay: boot.log, vmm.log, exec.sock,
 * timings.json and the VMM's own sockets), {@code disk.ext4}, {@code x/<exec>/} (exec shims).
 */
public final class VmIsolator implements Isolator {
    private static final KilnLog LOG = KilnLog.of(VmIsolator.class);

    /** The smallest writable disk a VM gets: ext4's journal and the guest's own writes need room. */
    private static final long MIN_DISK = 64L << 20;
    private static final Duration KILL_TIMEOUT = Duration.ofSeconds(5);
    /** Beyond the guest's memory: the VMM's own (device models, buffers, page cache of its disks) and the relay's. */
    static final long VMM_OVERHEAD = 256L << 20;
    /**
     * Tasks of the relay and the VMM beyond one per vCPU: QEMU's main, RCU and signal threads, and its block thread
     * pool (at most 64 workers); a VMM that would go past this is not doing a VM's work.
     */
    static final long VMM_TASKS = 128;

    private static final Isolation ISOLATION = new Isolation("vm",
            List.of("kiln-vm", Qemu.RUNTIME, Firecracker.RUNTIME),
            Set.of(SandboxNetwork.Mode.NONE, SandboxNetwork.Mode.BRIDGE, SandboxNetwork.Mode.USER),
            FileCopy.whenStopped("its disk is live inside its guest"), Set.of("bind", "volume", "tmpfs"),
            Set.of(Isolation.Option.KERNEL, Isolation.Option.DISK_SIZE));

    private final VmOptions options;
    /** The VMMs by runtime name; the first is the default. */
    private final List<Vmm> vmms;
    /** The ids jailed VMMs run as (docs/vm.md, "The VMM's jail"). */
    private final VmmIds ids;
    private volatile boolean idsChecked;

    public VmIsolator(VmOptions options) {
        this.options = options;
        this.vmms = List.of(new Qemu(options.runtimePaths(), options.stateRoot().resolve("kernels")),
                new Firecracker(options.runtimePaths(), options.stateRoot().resolve("kernels")));
        this.ids = new VmmIds(options.stateRoot().resolve("vmm-ids"), options.vmmUidRange());
    }

    @Override
    public Isolation isolation() {
        return ISOLATION;
    }

    /** The default VMM's: a sandbox that asks for another is checked against that one's at create. */
    @Override
    public Availability availability() {
        return vmms.getFirst().availability();
    }

    @Override
    public void check(SandboxOptions o) {
        Vmm vmm = vmm(o.runtime());
        vmm.availability().require(); // never another VMM in its place: said before an image is pulled for nothing
        vmm.check(o);
        if (o.kernel() != null && (!Path.of(o.kernel()).isAbsolute() || !Files.isRegularFile(Path.of(o.kernel())))) {
            throw KilnException.invalid("--kernel " + o.kernel() + ": not a file (give the absolute path of a "
                    + "bzImage or vmlinux on kilnd's host; kiln kernels lists the known ones)");
        }
        if (o.diskSize() != 0 && o.diskSize() < MIN_DISK) {
            throw KilnException.invalid("--disk-size must be at least 64m");
        }        // kiln-init is already PID 1 of the guest (--init is its job); the rest would be kiln-init's to apply
        java.util.List<String> flags = new java.util.ArrayList<>(o.settings().flags());
        flags.remove("--init");
        if (!flags.isEmpty()) {
            throw KilnException.invalid("the vm isolation does not support " + String.join(", ", flags)
                    + " yet (kiln-init does not apply it in the guest): use --isolation container or gvisor");
        }
    }

    @Override
    public String runtime(String runtime) {
        return vmm(runtime).binaryName();
    }

    @Override
    public Optional<GuestKernels> guestKernels() {
        return Optional.of(new GuestKernels() {
            @Override
            public List<Known> known() {
                return Kernel.known(options.kernel());
            }

            @Override
            public String accelerator() {
                return Qemu.accelerated() ? "kvm" : "tcg";
            }
        });
    }

    @Override
    public void create(SandboxSpec spec) {
        Vmm vmm = vmm(spec);
        checkShares(vmm, spec);
        vmm.require();
        vmm.check(new SandboxOptions(spec.runtime(), null, 0, spec.network().mode()));
        Kernel kernel = kernel(spec);
        initramfs(vmm, kernel);
        vmm.kernelFile(kernel, kernelsDir());
        ImageDisk.ensure(spec.imageRootfs(), options.stateRoot().resolve("vm-disks"));
        WritableDisk.ensure(spec.dir().resolve("disk.ext4"), diskSize(spec), options.stateRoot().resolve("vm-disks"),
                spec.disposable());
    }

    /**
     * Refuses, before anything is made and whether or not the VMM is installed, the mounts the sandbox's VMM cannot
     * give: a file (virtio-fs shares directories), and on Firecracker any bind mount or volume — it has no shared
     * filesystem device (no virtio-fs, no 9p); block-device volumes would be its way (docs/volumes.md), not done.
     */
    static void checkShares(Vmm vmm, SandboxSpec spec) {
        List<VirtioFs.Share> shares = VirtioFs.of(spec);
        if (vmm instanceof Firecracker && !shares.isEmpty()) {
            throw KilnException.invalid("Firecracker has no shared filesystem: bind mounts and volumes (-v, --mount, "
                    + "the image's VOLUME) need the vm isolation on QEMU (--runtime qemu); tmpfs works on both");
        }
        for (VirtioFs.Share share : shares) {
            if (!Files.isDirectory(share.source())) {
                throw KilnException.invalid("the vm isolation shares directories, not files: " + share.source()
                        + " (bind its directory, or use the container or gvisor isolation)");
            }
        }
    }

    @Override
    public SandboxTask start(SandboxSpec spec, Duration waitAttach) {
        return start(spec, waitAttach, null);
    }

    /**
     * The VM's state, its writable disk and shape into {@code dir}: QEMU's migration stream ({@link VmCheckpoint}) or
     * Firecracker's snapshot ({@link FirecrackerCheckpoint}).
     */
    @Override
    public void checkpoint(SandboxSpec spec, SandboxTask task, Path dir, boolean leaveRunning) {
        switch (checkpointable(spec)) {
            case Qemu qemu -> VmCheckpoint.save(spec, dir, leaveRunning, qemu, vmDir(spec), machine(spec, null));
            case Firecracker fc -> FirecrackerCheckpoint.save(spec, dir, leaveRunning, vmDir(spec),
                    fc.shape(machine(spec, null)), vmmPid(spec));
        }
    }

    /**
     * The VM restored from the checkpoint in {@code dir}: its disk put back, then QEMU with -incoming and the relay
     * resumed, or a Firecracker that loads the snapshot.
     */
    @Override
    public SandboxTask restore(SandboxSpec spec, Path dir, Duration waitAttach) {
        Path state = switch (checkpointable(spec)) {
            case Qemu qemu -> VmCheckpoint.check(dir, qemu.shape(machine(spec, null)));
            case Firecracker fc -> FirecrackerCheckpoint.check(dir, fc.shape(machine(spec, null)));
        };
        VmCheckpoint.restoreDisk(dir, spec.dir().resolve("disk.ext4"));
        return start(spec, waitAttach, state);
    }

    private Vmm checkpointable(SandboxSpec spec) {
        Vmm vmm = vmm(spec);
        if (!VirtioFs.of(spec).isEmpty()) {
            throw KilnException.invalid("checkpoints of a vm sandbox with bind mounts or volumes are not supported: "
                    + "QEMU cannot save a VM with a virtio-fs share (its state is virtiofsd's)");
        }
        if (spec.network().mode() != SandboxNetwork.Mode.NONE) {
            throw KilnException.invalid("checkpoints of a vm sandbox need --network none: a restored guest keeps "
                    + "the address and card of the run it was saved from, which the next start does not give back");
        }
        return vmm;
    }

    /** The sandbox's machine as {@link #start} makes it (for a checkpoint's shape: kernel, memory, vCPUs, devices). */
    private Vmm.Machine machine(SandboxSpec spec, Path restore) {
        Vmm vmm = vmm(spec);
        Kernel kernel = kernel(spec);
        Path initrd = initramfs(vmm, kernel);
        Path boot = vmm.kernelFile(kernel, kernelsDir());
        long memoryMiB = Math.max(64, memoryLimit(spec) >> 20);
        return new Vmm.Machine(spec.id(), boot, initrd, null, null, memoryMiB, vcpus(spec), GuestNic.of(spec)
                .orElse(null), null, 0, restore);
    }

    private static int vcpus(SandboxSpec spec) {
        int cpus = spec.resources().nanoCpus() > 0 ? (int) Math.max(1, (spec.resources().nanoCpus() + 999_999_999L)
                / 1_000_000_000L) : 1;
        return Math.min(cpus, Runtime.getRuntime().availableProcessors());
    }

    /** {@code checkpointState}: a checkpoint's state file to restore, else null: a boot or a snapshot's. */
    private SandboxTask start(SandboxSpec spec, Duration waitAttach, Path checkpointState) {
        Vmm vmm = vmm(spec);
        Kernel kernel = kernel(spec);
        Path initrd = initramfs(vmm, kernel);
        Path boot = vmm.kernelFile(kernel, kernelsDir());
        Path image = ImageDisk.ensure(spec.imageRootfs(), options.stateRoot().resolve("vm-disks"));
        Path seed = DiskTree.booted(spec.dir()) ? null : DiskTree.seed(spec.dir());
        Path disk = seed == null ? WritableDisk.ensure(spec.dir().resolve("disk.ext4"), diskSize(spec),
                options.stateRoot().resolve("vm-disks"), spec.disposable())
                : WritableDisk.seeded(spec.dir().resolve("disk.ext4"), diskSize(spec), seed); // files copied in
        Path vm = vmDir(spec);
        Path main = mainDir(spec);
        GuestNic nic = GuestNic.of(spec).orElse(null);
        try {
            Trees.delete(main); // the last run's shim files
            Files.createDirectories(main);
            Files.createDirectories(vm); // from here on the disk is the guest's (DiskTree.booted)
            DiskTree.dropSeed(spec.dir());
            List<String> stale = new ArrayList<>(List.of("exec.sock", "vmm.pid", "timings.json",
                    VmCheckpoint.MARKER));
            vmms.forEach(v -> stale.addAll(v.bootFiles())); // also another VMM's, of a run before an upgrade
            for (String file : stale) {
                Files.deleteIfExists(vm.resolve(file));
            }
            // its env may hold secrets; the disks' sizes: a restored VM keeps a disk its template bound when they match
            OwnerOnly.write(vm.resolve("start.spec"), GuestSpec.start(spec, nic, Files.size(image), Files.size(disk)));
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot prepare " + vm + ": " + e.getMessage(), e);
        }
        long memory = memoryLimit(spec);
        long memoryMiB = Math.max(64, memory >> 20);
        int vcpus = vcpus(spec);
        List<VirtioFs.Share> shares = VirtioFs.of(spec);
        Path restore = checkpointState;
        // made here on first need, before anything is held; a VM with shares has devices the template lacks: it boots
        if (restore == null && options.snapshot() && shares.isEmpty() && vmm instanceof Qemu qemu) {
            VmSnapshot.Shape shape = qemu.shape(new Vmm.Machine(spec.id(), boot, initrd, image, disk, memoryMiB,
                    vcpus, nic, null));
            restore = VmSnapshot.ensure(options.stateRoot().resolve("vm-snapshots"), shape,
                    qemu.template(shape, boot, initrd), options.jail() ? vmmIds() : null, options.helloTimeout(),
                    options.diskSizeBytes());
        } else if (restore == null && options.snapshot() && shares.isEmpty() && (nic == null || options.jail())
                && vmm instanceof Firecracker fc) { // a template's card is on a TAP in its jail's own namespace
            FirecrackerCheckpoint.Shape shape = fc.shape(new Vmm.Machine(spec.id(), boot, initrd, image, disk,
                    memoryMiB, vcpus, nic, null));
            restore = FirecrackerSnapshot.ensure(options.stateRoot().resolve("vm-snapshots"), shape,
                    fc.template(shape), options.jail() ? vmmIds() : null, options.helloTimeout());
        }
        Integer uid = options.jail() && vmm.jails() ? vmmIds().acquire(spec.id(), spec.dir()) : null;
        if (nic != null) {
            // Firecracker opens its TAP by name, so a jailed one must own it; QEMU is handed the relay's descriptor
            nic.prepare(vm, vmm instanceof Firecracker ? uid : null);
        }
        Vmm.Launch launch = vmm.launch(new Vmm.Machine(spec.id(), boot, initrd, image, disk, memoryMiB, vcpus, nic,
                uid, shares.size(), restore), vm);
        VirtioFs.start(vm, shares, uid); // before the VMM: QEMU connects to their sockets as it starts
        JailRecord.write(vm, launch.jail());
        Path shim = ShimBinary.locate();
        List<String> cmd = new ArrayList<>(List.of(shim.toString(), "--relay-vm", "--dir", vm.toString(),
                "--spec", vm.resolve("start.spec").toString(),
                "--hello-timeout", Long.toString(Math.max(1, options.helloTimeout().toSeconds()))));
        if (nic != null && nic.netns() != null) {
            cmd.addAll(List.of("--netns", nic.netns().toString())); // the VMM opens the TAP there (GuestNic)
        }
        cmd.addAll(launch.relayOptions());
        if (checkpointState != null && vmm instanceof Qemu) { // Firecracker's --resume is among its relay options
            cmd.addAll(List.of("--resume", "--qmp-sock", QemuCommand.QMP_SOCKET));
        }
        for (Path dir : hostCgroups(spec, vmm, memoryMiB, vcpus)) cmd.addAll(List.of("--cgroup", dir.toString()));
        cmd.add("--");
        cmd.addAll(launch.argv());
        return new VmTask(this, spec, Shim.launch(shim, main, shimOptions(spec.process().tty(),
                spec.process().stdin(), waitAttach, spec.log()), cmd));
    }

    @Override
    public SandboxTask adopt(SandboxSpec spec) {
        return new VmTask(this, spec, Shim.adopt(mainDir(spec)));
    }

    static ShimOptions shimOptions(boolean tty, boolean stdin, Duration waitAttach, Path log) {
        ShimOptions o = ShimOptions.defaults().withTty(tty).withStdin(stdin).withLog(log);
        return waitAttach.isZero() ? o : o.withWaitAttach(waitAttach);
    }

    /**
     * The root tree of a VM that does not run ({@link DiskTree}): before its first boot, writable through a seed the
     * next start puts on its disk; after, read-only through fuse2fs.
     */
    @Override
    public <T> T withRootTree(SandboxSpec spec, boolean running, boolean write,
                              java.util.function.Function<Path, T> work) {
        if (running || running(spec)) {
            throw KilnException.conflict("the VM of sandbox " + spec.name() + " is running: its disk is live inside "
                    + "its guest (stop it first, or use docker exec " + spec.name() + " tar)");
        }
        return DiskTree.with(spec, write, work);
    }

    @Override
    public <T> T withRootTree(SandboxSpec spec, boolean running, java.util.function.Function<Path, T> work) {
        return withRootTree(spec, running, false, work);
    }

    /** The writable disk's upper directory, read through fuse2fs (DiskChanges); refused while the VM runs. */
    @Override
    public <T> T withChanges(SandboxSpec spec, java.util.function.Function<Path, T> work) {
        if (running(spec)) {
            throw KilnException.conflict("the VM of sandbox " + spec.name() + " is running: stop it before "
                    + "committing its changes (its disk is live)");
        }
        return DiskChanges.read(spec.dir(), work);
    }

    @Override
    public boolean running(SandboxSpec spec) {
        return vmmPid(spec).isPresent();
    }

    @Override
    public void cleanup(SandboxSpec spec, boolean removeFiles) {
        Vmm vmm = vmm(spec);
        Optional<Long> pid = vmmPid(spec);
        if (pid.isPresent()) { // normally gone with its relay; a half-started sandbox may leave one
            vmm.quit(vmDir(spec));
            killAndWait(pid.get(), vmm.processName());
        }
        VirtioFs.stop(vmDir(spec)); // normally gone with the VMM's connection
        List<Path> left = MemoryCgroup.remove(spec.id());
        if (!left.isEmpty()) {
            LOG.sandbox(spec.id()).warn("cgroups of the sandbox still in use, not removed: " + left);
        }
        if (removeFiles) {
            // the writable disk and a seed are in the sandbox's directory, which the engine removes with all it
            // holds (in the background, after the answer: deleting the sparse disk here took 13-48 ms of each --rm)
            ids.release(spec.id(), spec.dir());
        }
    }

    /**
     * The memory and pids cgroups of the sandbox's relay and VMM (issues 11, 13: a guest must not grow host processes
     * without bound): memory, the guest's plus {@link #VMM_OVERHEAD} for the VMM's own and the relay's, plus what the
     * VMM itself adds ({@link Vmm#memoryOverhead}: QEMU's translation cache under TCG); tasks, {@link #VMM_TASKS} plus
     * one per vCPU. Where one cannot be made the VM still runs, and kilnd says so.
     */
    private static List<Path> hostCgroups(SandboxSpec spec, Vmm vmm, long memoryMiB, int vcpus) {
        long limit = (memoryMiB << 20) + VMM_OVERHEAD + vmm.memoryOverhead();
        List<Path> dirs = new ArrayList<>();
        try {
            dirs.add(MemoryCgroup.create(spec.id(), limit));
        } catch (IOException | RuntimeException e) {
            LOG.sandbox(spec.id()).warn("the sandbox runs without a memory limit on its VMM and relay: "
                    + e.getMessage(), e);
        }
        try {
            Path pids = PidsCgroup.create(spec.id(), VMM_TASKS + vcpus);
            if (!dirs.contains(pids)) dirs.add(pids); // cgroup v2: one directory holds both limits
        } catch (IOException | RuntimeException e) {
            LOG.sandbox(spec.id()).warn("the sandbox runs without a task limit on its VMM and relay: "
                    + e.getMessage(), e);
        }
        return dirs;
    }

    /** The ids, their range checked once against the host's users, groups and subordinate ids. */
    private VmmIds vmmIds() {
        if (!idsChecked) {
            options.vmmUidRange().checkUnowned();
            idsChecked = true;
        }
        return ids;
    }

    /** inspect's {@code VmmJail}: the jail the sandbox's VMM got at its last start (or that it had none). */
    @Override
    public Map<String, Object> inspect(SandboxSpec spec) {
        return JailRecord.read(vmDir(spec)).map(r -> Map.<String, Object>of("VmmJail", r.inspect())).orElse(Map.of());
    }

    /**
     * Guest text for one of kiln's lines, as the relay quotes it (docs/guest-protocol.md): control characters (C0, DEL,
     * C1: line ends, terminal escapes) as {@code \xNN}, a backslash doubled; so it cannot end the line or drive the
     * reader's terminal.
     */
    static String guestText(String text) {
        StringBuilder b = new StringBuilder(text.length());
        text.codePoints().forEach(c -> {
            if (c == '\\') b.append("\\\\");
            else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) b.append(String.format("\\x%02x", c));
            else b.appendCodePoint(c);
        });
        return b.toString();
    }

    /** Kills the VMM and waits (bounded) until it is gone; {@code comm}: the start of its process name. */
    static void killAndWait(long pid, String comm) {
        ProcessHandle.of(pid).ifPresent(p -> {
            p.destroyForcibly();
            long deadline = System.nanoTime() + KILL_TIMEOUT.toNanos();
            while (System.nanoTime() < deadline && vmmRunning(pid, comm)) {
                try {
                    Thread.sleep(10);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        });
    }

    /** The VMM's pid while that process is alive and still the sandbox's VMM (a reused pid is not). */
    Optional<Long> vmmPid(SandboxSpec spec) {
        try {
            long pid = Long.parseLong(Files.readString(vmDir(spec).resolve("vmm.pid")).strip());
            return vmmRunning(pid, vmm(spec).processName()) ? Optional.of(pid) : Optional.empty();
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    private static boolean vmmRunning(long pid, String name) {
        try {
            String comm = Files.readString(Path.of("/proc", Long.toString(pid), "comm")).strip();
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            char state = stat.charAt(stat.lastIndexOf(')') + 2);
            return comm.startsWith(name) && state != 'Z' && state != 'X';
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    long memoryLimit(SandboxSpec spec) {
        return spec.resources().memoryBytes() > 0 ? spec.resources().memoryBytes() : options.defaultMemoryBytes();
    }

    /** The sandbox's VMM: the one its runtime names, else the default (QEMU; also for {@code kiln-vm} and none). */
    Vmm vmm(SandboxSpec spec) {
        return vmm(spec.runtime());
    }

    private Vmm vmm(String runtime) {
        return vmms.stream().filter(v -> v.runtimeName().equals(runtime)).findFirst().orElse(vmms.getFirst());
    }

    /** {@code --kernel}, else the configured kernel, else the host's newest cloud kernel. */
    private Kernel kernel(SandboxSpec spec) {
        return Kernel.locate(spec.kernel() != null ? spec.kernel() : options.kernel());
    }

    private long diskSize(SandboxSpec spec) {
        return spec.diskSize() > 0 ? spec.diskSize() : options.diskSizeBytes();
    }

    /** The initramfs with the modules the sandbox's VMM needs (Firecracker: vsock instead of virtio_console). */
    private Path initramfs(Vmm vmm, Kernel kernel) {
        Path init = options.init() != null ? options.init() : NativeBinary.init();
        return Initramfs.ensure(kernel, vmm.guestModules(), init, kernelsDir());
    }

    private Path kernelsDir() {
        return options.stateRoot().resolve("kernels");
    }

    static Path vmDir(SandboxSpec spec) {
        return spec.dir().resolve("vm");
    }

    static Path mainDir(SandboxSpec spec) {
        return spec.dir().resolve("main");
    }
}
