package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.LibcCall;
import dev.kiln.OwnerOnly;
import dev.kiln.isolation.Mount;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.oci.MemoryCgroup;
import dev.kiln.isolation.oci.PidsCgroup;
import dev.kiln.isolation.shim.ShimBinary;
import dev.kiln.isolation.vm.jail.JailRecord;
import dev.kiln.isolation.vm.jail.VmmIds;
import dev.kiln.isolation.vm.jail.VmmJail;
import dev.kiln.rootfs.Mounts;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * A microVM whose root is a host directory someone else prepared: containerd's bundle rootfs (docs/containerd.md).
 * The directory is shared into the guest with virtio-fs (share 0, kiln-init's {@code root=} record) instead of the
 * image and writable disks {@link VmIsolator} makes from kiln's image store: nothing is copied, and the guest's
 * writes land in containerd's snapshot as a runc container's would. Everything else is the vm isolation's own: the
 * kernel and initramfs caches, QEMU's command line, the relay (kiln-shim {@code --relay-vm}), the VMM's jail and
 * cgroups, virtiofsd's sandbox, exec through {@code --relay-exec}. No kilnd: the caller (the containerd shim) runs
 * the relay command with the task's stdio, and the relay's exit status is the guest process's.
 *
 * <p>Files in {@code dir}: {@code vm/} (as a sandbox's: start.spec, boot.log, vmm.log, exec.sock, the VMM's
 * {@code run/}, virtiofsd's logs), {@code vmm-id} (the jailed VMM's uid, claimed under {@code stateRoot/vmm-ids}),
 * {@code started} (the start gate: START is sent to the guest once it exists).
 */
public final class DirectoryVm {
    private static final KilnLog LOG = KilnLog.of(DirectoryVm.class);

    /**
     * One VM: {@code id} names its cgroups and uid claim; {@code dir} holds its files; {@code root} is the shared root
     * directory; {@code mounts} tmpfs and binds of directories (more shares) in the guest; {@code hosts} and
     * {@code resolv} null leave the root's own; {@code netns} a named network namespace with the CNI's {@code eth0}
     * (a TAP is made beside it, as for a bridged sandbox), null for loopback only.
     */
    public record Request(String id, Path dir, Path root, ProcessSpec process, String hostname, String hosts,
                          String resolv, boolean readOnly, List<Mount> mounts, long memoryBytes, int cpus,
                          Path netns) {
        public Request {
            mounts = List.copyOf(mounts);
        }
    }

    /** The VMM's uids for VMs of the containerd shim: beside kilnd's default range, so the two never share one. */
    public static final String UID_RANGE = "100065536-100131071";

    private final VmOptions options;
    private final Qemu qemu;
    private final VmmIds ids;

    public DirectoryVm(VmOptions options) {
        this.options = options;
        this.qemu = new Qemu(options.runtimePaths(), options.stateRoot().resolve("kernels"));
        this.ids = new VmmIds(options.stateRoot().resolve("vmm-ids"), options.vmmUidRange());
    }

    /**
     * Prepares the VM (caches, shares' virtiofsd, TAP, cgroups, the jail's uid) and returns the relay's command line;
     * the guest's process starts once {@link #open} made the gate. What was started is undone by {@link #cleanup}.
     *
     * <p>Its steps overlap: this runs on a pod's critical path (containerd's Create of the pod's sandbox), and most of
     * it is waiting for other processes (virtiofsd's start, {@code ldd} of QEMU for its jail, {@code ip} reading and
     * wiring the pod's network namespace), which need not wait for each other: virtiofsd starts first, the pod
     * network's card is read and its TAP made on threads of their own, and everything is joined before the relay's
     * command line is returned (measured in docs/containerd.md).
     */
    public List<String> prepare(Request r) {
        qemu.require();
        if (!Files.isDirectory(r.root())) {
            throw KilnException.invalid("the VM's root " + r.root() + " is not a directory");
        }
        Path vm = vmDir(r.dir());
        // the root is shared writable even for a read-only root (CRI's pause): kiln-init makes /dev, /proc, /sys and
        // the mount points in it first, then remounts it read-only in the guest; it is the task's own snapshot
        List<VirtioFs.Share> shares = new ArrayList<>(List.of(new VirtioFs.Share(0, r.root(), "/", false)));
        for (Mount m : r.mounts()) {
            if (!m.type().equals("bind")) continue;
            if (!Files.isDirectory(Path.of(m.source()))) {
                throw KilnException.invalid("the vm isolation shares directories, not files: " + m.source());
            }
            shares.add(new VirtioFs.Share(shares.size(), Path.of(m.source()), m.target(),
                    m.options().contains("ro")));
        }
        try {
            Files.createDirectories(vm);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot prepare " + vm + ": " + e.getMessage(), e);
        }
        VirtioFs.Starting fs = VirtioFs.spawn(vm, shares); // before the VMM: QEMU connects to their sockets as it starts
        Path kernels = options.stateRoot().resolve("kernels");
        Path libraries = kernels.resolve("vmm-libraries");
        // what waits on other processes or loads cold code, on threads of its own, beside the caches' checks; but a
        // node's first VM extracts the kernel's vmlinux in memory, most of the shim's 96 MB heap (a thread beside it
        // was seen to tip it over): until a VM was made here (the jail's library list exists), after the caches
        Side side = new Side();
        boolean cachesMade = Files.exists(libraries);
        try {
            if (cachesMade) side.start(r, vm, libraries);
            Kernel kernel = Kernel.locate(options.kernel());
            Path init = options.init() != null ? options.init() : NativeBinary.init();
            Path initrd = Initramfs.ensure(kernel, qemu.guestModules(), init, kernels);
            Path boot = qemu.kernelFile(kernel, kernels);
            if (!cachesMade) side.start(r, vm, libraries);
            GuestNic nic = join(side.card);
            Files.deleteIfExists(gate(r.dir()));
            OwnerOnly.write(vm.resolve("start.spec"), GuestSpec.directory(r.process(), r.hostname(), r.hosts(),
                    r.resolv(), r.readOnly(), VirtioFs.tag(0), r.mounts(), nic)); // its env may hold secrets
            long memoryMiB = Math.max(64, (r.memoryBytes() > 0 ? r.memoryBytes() : options.defaultMemoryBytes()) >> 20);
            int vcpus = Math.max(1, Math.min(r.cpus(), Runtime.getRuntime().availableProcessors()));
            Integer uid = null;
            if (options.jail()) {
                options.vmmUidRange().checkUnowned();
                uid = ids.acquire(r.id(), r.dir());
            }
            join(side.jailFiles);
            Vmm.Launch launch = qemu.launch(new Vmm.Machine(r.id(), boot, initrd, null, null, memoryMiB, vcpus, nic,
                    uid, shares.size(), null), vm);
            JailRecord.write(vm, launch.jail());
            List<String> cmd = new ArrayList<>(List.of(ShimBinary.locate().toString(), "--relay-vm",
                    "--dir", vm.toString(), "--spec", vm.resolve("start.spec").toString(),
                    "--hello-timeout", Long.toString(Math.max(1, options.helloTimeout().toSeconds())),
                    "--start-gate", gate(r.dir()).toString()));
            if (nic != null) cmd.addAll(List.of("--netns", nic.netns().toString()));
            cmd.addAll(launch.relayOptions());
            long limit = (memoryMiB << 20) + VmIsolator.VMM_OVERHEAD + qemu.memoryOverhead();
            try {
                cmd.addAll(List.of("--cgroup", MemoryCgroup.create(r.id(), limit).toString()));
                Path pids = PidsCgroup.create(r.id(), VmIsolator.VMM_TASKS + vcpus);
                if (!cmd.contains(pids.toString())) cmd.addAll(List.of("--cgroup", pids.toString()));
            } catch (IOException | RuntimeException e) {
                // unlike kilnd (which runs the VM unlimited and says so in its log), the shim refuses: nobody reads
                // its log, and containerd's user would not learn that the VM's host memory is unbounded
                throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot limit the VM's host memory and "
                        + "tasks: " + e.getMessage(), e);
            }
            join(side.tap);
            fs.ready(uid);
            cmd.add("--");
            cmd.addAll(launch.argv());
            return cmd;
        } catch (IOException | RuntimeException e) {
            // nothing of this VM is still being made when the caller's cleanup runs
            for (CompletableFuture<?> f : List.of(side.jailFiles, side.card, side.tap)) {
                try {
                    f.join();
                } catch (RuntimeException ignored) {
                    // the first failure is the one reported
                }
            }
            fs.abort();
            if (e instanceof RuntimeException failure) throw failure;
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot prepare " + vm + ": " + e.getMessage(), e);
        }
    }

    /**
     * Does ahead what a VM's {@link #prepare} computes from files that stay as they are on a node (the QEMU jail's
     * seccomp filter and its library list, the kernel's module order, kiln-init's digest: the initramfs cache's key;
     * the kernel file QEMU boots, once a VM extracted its vmlinux) and runs the cold code of its first log line and
     * of the jail's record, so that a VM prepared later in this JVM finds them: a spare containerd shim's warm-up,
     * while it waits for a pod
     * (prepare's cold paths took 0.3-1 s of a pod's Create at load 10). No side effect: nothing is written, no
     * process started; a node without QEMU or a kernel (a container-only node) skips it.
     */
    public void warm() {
        warm(() -> false);
    }

    /**
     * {@link #warm()}, ending between its steps once {@code enough} says so: a spare shim claimed for a pod of
     * another isolation must not spend the pod's CPU on a VM's computations (each step is tens to hundreds of ms).
     */
    public void warm(java.util.function.BooleanSupplier enough) {
        if (enough.getAsBoolean() || !qemu.availability().available()) return;
        Kernel kernel = Kernel.locate(options.kernel());
        Initramfs.warm(kernel, options.init() != null ? options.init() : NativeBinary.init());
        if (enough.getAsBoolean()) return;
        Vmlinux.warm(kernel, options.stateRoot().resolve("kernels"));
        KilnLog.warm(); // a VM's first step logs (QEMU's TCG notice)
        if (options.jail() && !enough.getAsBoolean()) {
            VmmJail.warmQemuFilter(options.stateRoot().resolve("kernels").resolve("vmm-libraries"));
            JailRecord.warm();
        }
    }

    /** {@link #prepare}'s work on threads of its own: the jail's files, the pod network's card, then its TAP. */
    private final class Side {
        CompletableFuture<Void> jailFiles = CompletableFuture.completedFuture(null);
        CompletableFuture<GuestNic> card = CompletableFuture.completedFuture(null);
        CompletableFuture<Void> tap = CompletableFuture.completedFuture(null);

        void start(Request r, Path vm, Path libraries) {
            jailFiles = async(() -> {
                if (options.jail()) VmmJail.warmQemu(qemu.binaryPath(), libraries);
                return null;
            });
            card = async(() -> r.netns() == null ? null : Netns.card(r.netns()));
            tap = card.thenApplyAsync(nic -> {
                if (nic != null) nic.prepare(vm, null);
                return null;
            }, DirectoryVm::thread);
        }
    }

    private static <T> CompletableFuture<T> async(java.util.function.Supplier<T> work) {
        return CompletableFuture.supplyAsync(work, DirectoryVm::thread);
    }

    private static void thread(Runnable r) {
        Thread.ofPlatform().daemon().name("vm-prepare").start(r);
    }

    /** The future's value, its failure thrown as it was (a KilnException stays one). */
    private static <T> T join(CompletableFuture<T> f) {
        try {
            return f.join();
        } catch (java.util.concurrent.CompletionException e) {
            if (e.getCause() instanceof RuntimeException cause) throw cause;
            throw e;
        }
    }

    /**
     * A pod's /etc/hosts, /etc/resolv.conf and the name its /etc/hostname holds, for its containers (null: the
     * container root's own).
     */
    public record PodFiles(String hosts, String resolv, String hostname) {
    }

    /** Where the pod directory ({@link #podDir}) is in the guest: each container's root is a directory in it. */
    public static final String POD_GUEST = "/run/kiln-pod";

    /**
     * The pod's directory on the host, shared into the pod's VM at {@link #POD_GUEST}: made a shared mount of its own
     * so that the roots bound under it after the VM started ({@link #podRoot}) propagate into virtiofsd's mount
     * namespace (a slave of it) and so into the guest.
     */
    public static Path podDir(Path dir) {
        return dir.resolve("pod");
    }

    /** Prepares the pod directory before the VM's {@link #prepare} (its Mount goes in the request). */
    public static Mount podShare(Path dir) {
        Path pod = podDir(dir);
        try {
            Files.createDirectories(pod);
            PodBind.bind(pod, pod);
            PodBind.shared(pod);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot make " + pod + ": " + e.getMessage(), e);
        }
        return new Mount("bind", pod.toString(), POD_GUEST, List.of());
    }

    /** Binds a container's root at {@code POD/<name>}, which the pod's VM sees at once; its guest path's name. */
    public static void podRoot(Path dir, String name, Path root) {
        Path at = podDir(dir).resolve(name);
        try {
            Files.createDirectory(at);
        } catch (FileAlreadyExistsException e) {
            // made by an earlier attempt, or by the guest: PodBind.beneath binds only on a directory, never a link
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot make " + at + ": " + e.getMessage(), e);
        }
        int errno = PodBind.beneath(root, at);
        if (errno != 0) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot bind the container's root at " + at + ": "
                    + LibcCall.describe(errno));
        }
    }

    /** Unbinds a container's root from the pod directory (idempotent). */
    public static void podRootGone(Path dir, String name) {
        Path at = podDir(dir).resolve(name);
        if (!Files.isDirectory(at, LinkOption.NOFOLLOW_LINKS)) return;
        PodBind.unbind(at); // not mounted (EINVAL) when the Create failed before its bind
        try {
            Files.deleteIfExists(at);
        } catch (IOException e) {
            // not empty: the guest wrote in it after the unmount; the pod's cleanup removes the bundle
        }
    }

    /** Lets the guest's process start (the relay sends START once this file exists). */
    public static void open(Path dir) {
        try {
            Files.writeString(gate(dir), "");
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot start the VM's process: " + e.getMessage(), e);
        }
    }

    /**
     * The relay command of an exec: its request (the process) written to {@code request} first. {@code container}
     * non-null: the process runs in that container of the pod, in its own root ({@link #podRoot}).
     */
    public static List<String> exec(Path dir, Path request, ProcessSpec process, String container) {
        return exec(dir, request, process, container, null);
    }

    /**
     * The same; {@code etc} (a pod's container) the content of its /etc/hosts, /etc/resolv.conf and /etc/hostname, which the guest
     * binds over its root's in the process's own mount namespace (CRI binds the pod's files so).
     */
    public static List<String> exec(Path dir, Path request, ProcessSpec process, String container, PodFiles etc) {
        try {
            OwnerOnly.write(request, GuestSpec.exec(process, container == null ? null : POD_GUEST + "/" + container,
                    etc));
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot write " + request + ": " + e.getMessage(), e);
        }
        return List.of(ShimBinary.locate().toString(), "--relay-exec", vmDir(dir).resolve("exec.sock").toString(),
                request.toString());
    }

    /** Pauses or resumes the guest's vCPUs (QMP). */
    public void pause(Path dir, boolean paused) {
        qemu.pause(vmDir(dir), paused);
    }

    /** The VMM's pid while it runs. */
    public Optional<Long> vmmPid(Path dir) {
        try {
            long pid = Long.parseLong(Files.readString(vmDir(dir).resolve("vmm.pid")).strip());
            Optional<ProcessHandle> h = ProcessHandle.of(pid);
            return h.isPresent() && h.get().isAlive() && h.get().info().command().map(c -> c.contains("qemu"))
                    .orElse(false) ? Optional.of(pid) : Optional.empty();
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /** Stops what is left (the VMM, virtiofsd), removes the cgroups and gives the uid back; idempotent. */
    public void cleanup(String id, Path dir) {
        vmmPid(dir).ifPresent(pid -> {
            qemu.quit(vmDir(dir));
            VmIsolator.killAndWait(pid, qemu.processName());
        });
        List<ProcessHandle> shares = new ArrayList<>();
        for (int i = 0; Files.exists(vmDir(dir).resolve("fs" + i + ".pid")); i++) {
            try {
                ProcessHandle.of(Long.parseLong(Files.readString(vmDir(dir).resolve("fs" + i + ".pid")).strip()))
                        .ifPresent(h -> { shares.add(h); shares.addAll(h.descendants().toList()); });
            } catch (IOException | NumberFormatException e) {
                break;
            }
        }
        VirtioFs.stop(vmDir(dir));
        // gone before the caller unmounts the root they share (bounded: they were just SIGKILLed)
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (shares.stream().anyMatch(ProcessHandle::isAlive) && System.nanoTime() < deadline) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        MemoryCgroup.remove(id);
        unmountPod(dir);
        if (Files.isDirectory(dir)) ids.release(id, dir);
    }

    /**
     * Everything mounted under the pod directory, then itself, deepest first: lazily (the VM is gone, nothing should
     * use them) and never through a link in the last name (the guest could write in the pod directory).
     */
    private static void unmountPod(Path dir) {
        Path pod = podDir(dir);
        if (!Files.isDirectory(pod, LinkOption.NOFOLLOW_LINKS)) return;
        for (Path at : Mounts.under(pod)) {
            int errno = PodBind.unbind(at);
            if (errno != 0) LOG.warn("cannot unmount " + at + ": errno " + errno);
        }
    }

    static Path vmDir(Path dir) {
        return dir.resolve("vm");
    }

    private static Path gate(Path dir) {
        return dir.resolve("started");
    }
}
