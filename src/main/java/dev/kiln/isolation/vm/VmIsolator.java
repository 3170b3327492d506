package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;
import dev.kiln.isolation.Isolator;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.RunningProcess;
import dev.kiln.isolation.SandboxNetwork;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.SandboxStats;
import dev.kiln.isolation.oci.MemoryCgroup;
import dev.kiln.isolation.shim.AttachConnection;
import dev.kiln.isolation.shim.LogReader;
import dev.kiln.isolation.shim.Shim;
import dev.kiln.isolation.shim.ShimBinary;
import dev.kiln.isolation.shim.ShimOptions;
import dev.kiln.rootfs.Trees;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * The {@code vm} isolation on QEMU {@code microvm}, or on Firecracker with {@code --runtime firecracker} (docs/vm.md):
 * the image's tree as a shared read-only erofs disk, a writable ext4 disk per sandbox, the host's kernel with an
 * initramfs of kiln-init and the modules it needs. The main process is the VMM under kiln-shim, through kiln-shim's
 * VM relay, which maps the guest's main process onto the shim's stdio; signals and execs travel over the guest
 * protocol (docs/guest-protocol.md). The two VMMs differ only in what the relay is told: QEMU's argv and its
 * virtio-serial socket to connect to; or Firecracker's argv, its API requests to send, and the hybrid-vsock socket to
 * listen on.
 *
 * <p>In the sandbox's directory: {@code main/} (the shim), {@code vm/} (the relay: boot.log, vmm.log, exec.sock,
 * timings.json; QEMU: ctl.sock, qmp.sock; Firecracker: firecracker.sock, vsock.sock, vsock.sock_1024, boot.http),
 * {@code disk.ext4}, {@code x/<exec>/} (exec shims).
 */
public final class VmIsolator implements Isolator {

    private static final Duration TOP_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration QMP_TIMEOUT = Duration.ofSeconds(2);
    private static final Duration KILL_TIMEOUT = Duration.ofSeconds(5);
    /** Beyond the guest's memory: the VMM's own (device models, buffers, page cache of its disks) and the relay's. */
    static final long VMM_OVERHEAD = 256L << 20;

    private final VmOptions options;

    public VmIsolator(VmOptions options) {
        this.options = options;
    }

    @Override
    public String name() {
        return "vm";
    }

    @Override
    public String runtime() {
        return QemuCommand.BINARY;
    }

    @Override
    public String runtime(SandboxSpec spec) {
        return firecracker(spec) ? FirecrackerCommand.BINARY : QemuCommand.BINARY;
    }

    private static final java.util.concurrent.atomic.AtomicBoolean TCG_NOTICED = new java.util.concurrent.atomic.AtomicBoolean();

    /** Once per kilnd, in its log: VMs will be slow here, and why. */
    private static void noticeTcg() {
        if (!accelerated() && TCG_NOTICED.compareAndSet(false, true)) {
            System.err.println("kilnd: notice: /dev/kvm is not usable here, so VMs run under QEMU's TCG emulation "
                    + "(seconds per boot; docs/vm.md)");
        }
    }

    /** "kvm" or "tcg": how this host's VMs run, as inspect shows it. */
    public static String accelerator() {
        return accelerated() ? "kvm" : "tcg";
    }

    /** Whether VMs run with KVM here (else TCG: emulated, seconds per boot). */
    public static boolean accelerated() {
        return QemuCommand.kvmUsable();
    }

    @Override
    public void create(SandboxSpec spec) {
        if (firecracker(spec)) {
            FirecrackerCommand.requireAvailable(); // never QEMU in its place
            if (spec.network().mode() == SandboxNetwork.Mode.USER) {
                throw KilnException.invalid("--network user is QEMU's slirp; the firecracker runtime has the kiln "
                        + "bridge (the default) or --network none");
            }
        } else {
            requireQemu();
            noticeTcg();
        }
        Kernel kernel = kernel(spec);
        initramfs(spec, kernel);
        kernelFile(spec, kernel);
        ImageDisk.ensure(spec.imageRootfs(), options.stateRoot().resolve("vm-disks"));
        WritableDisk.ensure(spec.dir().resolve("disk.ext4"), diskSize(spec));
    }

    @Override
    public Shim start(SandboxSpec spec, Duration waitAttach) {
        Kernel kernel = kernel(spec);
        Path initrd = initramfs(spec, kernel);
        Path boot = kernelFile(spec, kernel);
        Path image = ImageDisk.ensure(spec.imageRootfs(), options.stateRoot().resolve("vm-disks"));
        Path disk = WritableDisk.ensure(spec.dir().resolve("disk.ext4"), diskSize(spec));
        Path vm = vmDir(spec);
        GuestNic nic = GuestNic.of(spec).orElse(null);
        try {
            Files.createDirectories(vm);
            Files.createDirectories(spec.dir().resolve("main"));
            for (String stale : List.of(QemuCommand.CONTROL_SOCKET, QemuCommand.QMP_SOCKET, "exec.sock", "vmm.pid",
                    "timings.json", FirecrackerCommand.API_SOCKET, FirecrackerCommand.VSOCK_SOCKET,
                    FirecrackerCommand.controlSocket(), FirecrackerCommand.REQUESTS_FILE)) {
                Files.deleteIfExists(vm.resolve(stale));
            }
            OwnerOnly.write(vm.resolve("start.spec"), GuestSpec.start(spec, nic)); // its env may hold secrets
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot prepare " + vm + ": " + e.getMessage(), e);
        }
        if (nic != null) {
            nic.prepare(vm);
        }
        long memory = spec.resources().memoryBytes() > 0 ? spec.resources().memoryBytes() : options.defaultMemoryBytes();
        int cpus = spec.resources().nanoCpus() > 0 ? (int) Math.max(1, (spec.resources().nanoCpus() + 999_999_999L)
                / 1_000_000_000L) : 1;
        long memoryMiB = Math.max(64, memory >> 20);
        int vcpus = Math.min(cpus, Runtime.getRuntime().availableProcessors());
        Path shim = ShimBinary.locate();
        List<String> cmd = new ArrayList<>(List.of(shim.toString(), "--relay-vm", "--dir", vm.toString(),
                "--spec", vm.resolve("start.spec").toString(),
                "--hello-timeout", Long.toString(Math.max(1, options.helloTimeout().toSeconds()))));
        if (nic != null && nic.netns() != null) {
            cmd.addAll(List.of("--netns", nic.netns().toString())); // the VMM opens the TAP there (GuestNic)
        }
        List<String> vmm;
        if (firecracker(spec)) {
            FirecrackerCommand fc = new FirecrackerCommand(firecrackerId(spec), boot, initrd, image, disk, memoryMiB,
                    vcpus, nic);
            try {
                Files.write(vm.resolve(FirecrackerCommand.REQUESTS_FILE), FirecrackerApi.script(fc.requests()));
            } catch (IOException e) {
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot write " + vm.resolve(
                        FirecrackerCommand.REQUESTS_FILE) + ": " + e.getMessage(), e);
            }
            // The relay, not kilnd, sends the boot sequence: with --wait-attach the outer shim starts the relay (and
            // so Firecracker) only when the first client attaches, after start() has returned; and the relay must be
            // listening on the vsock socket before InstanceStart, which only it can order (docs/vm.md).
            cmd.addAll(List.of("--api-sock", FirecrackerCommand.API_SOCKET,
                    "--api-requests", FirecrackerCommand.REQUESTS_FILE,
                    "--listen", FirecrackerCommand.controlSocket(), "--console-stdout"));
            vmm = fc.argv();
        } else {
            vmm = new QemuCommand(boot, initrd, image, disk, memoryMiB, vcpus, QemuCommand.kvmUsable(),
                    QemuCommand.hostTscKhz(), nic == null ? List.of() : nic.qemuArgs()).argv();
        }
        hostCgroup(spec, memoryMiB).ifPresent(dir -> cmd.addAll(List.of("--cgroup", dir.toString())));
        cmd.add("--");
        cmd.addAll(vmm);
        return Shim.launch(shim, spec.dir().resolve("main"), shimOptions(spec.process(), waitAttach,
                spec.dir().resolve("log.json")), cmd);
    }

    @Override
    public void signal(SandboxSpec spec, int signal) {
        Shim shim = Shim.adopt(spec.dir().resolve("main"));
        if (shim.exitStatus().isPresent() || !shim.alive()) {
            throw KilnException.conflict("sandbox " + spec.name() + " is not running");
        }
        Optional<Long> vmm = vmmPid(spec);
        try (AttachConnection c = shim.attach()) {
            c.signal(signal); // to the relay, which passes it to the guest's main process
        } catch (IOException e) {
            throw KilnException.conflict("cannot signal sandbox " + spec.name() + ": " + e.getMessage());
        }
        if (signal == 9) {
            // SIGKILL ends the relay (it cannot be passed on) and QEMU dies with it. Wait for the relay's end first:
            // killing QEMU before the relay got the signal would make the relay report a lost VM (125), not 137.
            shim.await(Duration.ofSeconds(5));
            vmm.ifPresent(pid -> killAndWait(pid, vmmName(spec)));
        }
    }

    @Override
    public RunningProcess exec(SandboxSpec spec, String execId, ProcessSpec process, Duration waitAttach) {
        Path dir = spec.dir().resolve("x").resolve(execId.length() > 12 ? execId.substring(0, 12) : execId);
        Path request = dir.resolve("exec.spec");
        try {
            Files.createDirectories(dir);
            OwnerOnly.write(request, GuestSpec.exec(process)); // its env may hold secrets
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot write " + request + ": " + e.getMessage(), e);
        }
        Path shim = ShimBinary.locate();
        return Shim.launch(shim, dir, shimOptions(process, waitAttach, dir.resolve("log.json")),
                List.of(shim.toString(), "--relay-exec", vmDir(spec).resolve("exec.sock").toString(), request.toString()));
    }

    private static ShimOptions shimOptions(ProcessSpec p, Duration waitAttach, Path log) {
        ShimOptions o = ShimOptions.defaults().withTty(p.tty()).withStdin(p.stdin()).withLog(log);
        return waitAttach.isZero() ? o : o.withWaitAttach(waitAttach);
    }

    /** {@code ps} run inside the guest (the image must have one, as for {@code docker top}). */
    @Override
    public String top(SandboxSpec spec) {
        ProcessSpec p = spec.process();
        ProcessSpec ps = new ProcessSpec(List.of("ps"), p.env(), "/", 0, 0, List.of(), false, false);
        String id = "top" + Long.toHexString(System.nanoTime());
        Shim shim = (Shim) exec(spec, id, ps, Duration.ZERO);
        try {
            int code = shim.await(TOP_TIMEOUT).orElseThrow(() -> KilnException.conflict("ps in sandbox "
                    + spec.name() + " did not finish within " + TOP_TIMEOUT.toSeconds() + " s")).exitCode();
            String out = LogReader.of(shim.dir()).all().stream().map(LogReader.LogRecord::text)
                    .collect(Collectors.joining());
            if (code != 0) {
                throw KilnException.conflict("cannot list processes of " + spec.name() + " (ps in the guest exited "
                        + code + ": guest: " + guestText(out.strip().lines().reduce((a, b) -> b).orElse("")) + ")");
            }
            return out;
        } finally {
            Trees.delete(shim.dir());
        }
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

    @Override
    public boolean oomKilled(SandboxSpec spec) {
        return false; // the guest kernel's OOM killer is not reported yet
    }

    /** The VMM process's CPU time and resident memory, as the host sees them. */
    @Override
    public SandboxStats stats(SandboxSpec spec) {
        long pid = vmmPid(spec).orElseThrow(() -> KilnException.conflict("sandbox " + spec.name() + " has no VM running"));
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime + stime, in USER_HZ (100 on Linux)
            long rssPages = Long.parseLong(Files.readString(Path.of("/proc", Long.toString(pid), "statm")).split(" ")[1]);
            long limit = spec.resources().memoryBytes() > 0 ? spec.resources().memoryBytes() : options.defaultMemoryBytes();
            return new SandboxStats(ticks * 10_000_000L, rssPages * 4096, limit, 0);
        } catch (IOException | RuntimeException e) {
            throw KilnException.conflict("sandbox " + spec.name() + " has no VM running");
        }
    }

    /** The VMM runs (the relay without it holds no guest). */
    @Override
    public boolean running(SandboxSpec spec) {
        return vmmPid(spec).isPresent();
    }

    @Override
    public void cleanup(SandboxSpec spec, boolean removeFiles) {
        Optional<Long> pid = vmmPid(spec);
        if (pid.isPresent()) { // normally gone with its relay; a half-started sandbox may leave one
            if (!firecracker(spec)) { // Firecracker has no quit request: killing it is its hard stop
                try (Qmp qmp = Qmp.connect(vmDir(spec).resolve(QemuCommand.QMP_SOCKET), QMP_TIMEOUT)) {
                    qmp.execute("quit");
                } catch (IOException e) {
                    // killed below
                }
            }
            killAndWait(pid.get(), vmmName(spec));
        }
        List<Path> left = MemoryCgroup.remove(spec.id());
        if (!left.isEmpty()) {
            System.err.println("kilnd: cgroups of sandbox " + spec.id() + " still in use, not removed: " + left);
        }
        if (removeFiles) {
            try {
                Files.deleteIfExists(spec.dir().resolve("disk.ext4"));
            } catch (IOException e) {
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot remove " + spec.dir().resolve("disk.ext4")
                        + ": " + e.getMessage(), e);
            }
        }
    }

    /**
     * The memory cgroup of the sandbox's relay and VMM (issue 11: a guest must not grow host processes without bound):
     * the guest's memory plus {@link #VMM_OVERHEAD} for the VMM's own and the relay's, plus under TCG the translation
     * cache QEMU fills as the guest runs. Where no such cgroup can be made the VM still runs, and kilnd says so.
     */
    private static Optional<Path> hostCgroup(SandboxSpec spec, long memoryMiB) {
        long limit = (memoryMiB << 20) + VMM_OVERHEAD + (QemuCommand.kvmUsable() ? 0 : QemuCommand.TCG_CACHE);
        try {
            return Optional.of(MemoryCgroup.create(spec.id(), limit));
        } catch (IOException | RuntimeException e) {
            System.err.println("kilnd: sandbox " + spec.id() + " runs without a memory limit on its VMM and relay: "
                    + e.getMessage());
            return Optional.empty();
        }
    }

    /** Kills the VMM and waits (bounded) until it is gone; {@code comm}: the start of its process name. */
    private static void killAndWait(long pid, String comm) {
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

    /** The VMM (QEMU or Firecracker), the only host process the guest talks to. */
    @Override
    public List<Long> frontPids(SandboxSpec spec) {
        return vmmPid(spec).map(List::of).orElse(List.of());
    }

    /** The VMM's pid while that process is alive and still the sandbox's VMM (a reused pid is not). */
    private static Optional<Long> vmmPid(SandboxSpec spec) {
        try {
            long pid = Long.parseLong(Files.readString(vmDir(spec).resolve("vmm.pid")).strip());
            return vmmRunning(pid, vmmName(spec)) ? Optional.of(pid) : Optional.empty();
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /** The start of the VMM's process name (/proc/PID/comm). */
    private static String vmmName(SandboxSpec spec) {
        return firecracker(spec) ? FirecrackerCommand.BINARY : "qemu-system";
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

    @Override
    public java.util.Optional<Path> bootLog(SandboxSpec spec) {
        return java.util.Optional.of(vmDir(spec).resolve("boot.log"));
    }

    /** The kernels a VM can boot here, the default marked. */
    public List<Kernel.Known> kernels() {
        return Kernel.known(options.kernel());
    }

    /** {@code --kernel}, else the configured kernel, else the host's newest cloud kernel. */
    private Kernel kernel(SandboxSpec spec) {
        return Kernel.locate(spec.kernel() != null ? spec.kernel() : options.kernel());
    }

    private long diskSize(SandboxSpec spec) {
        return spec.diskSize() > 0 ? spec.diskSize() : options.diskSizeBytes();
    }

    /** {@code --runtime firecracker}: Firecracker is the VMM; anything else (qemu, kiln-vm, none) is QEMU. */
    static boolean firecracker(SandboxSpec spec) {
        return FirecrackerCommand.BINARY.equals(spec.runtime());
    }

    /** Firecracker's {@code --id} ({@code [A-Za-z0-9-]}, ≤ 64): the sandbox's id, which is 64 hex digits. */
    private static String firecrackerId(SandboxSpec spec) {
        String id = spec.id().replaceAll("[^A-Za-z0-9-]", "-");
        return id.length() > 64 ? id.substring(0, 64) : id;
    }

    /** The initramfs with the modules the sandbox's VMM needs (Firecracker: vsock instead of virtio_console). */
    private Path initramfs(SandboxSpec spec, Kernel kernel) {
        Path init = options.init() != null ? options.init() : NativeBinary.init();
        return Initramfs.ensure(kernel, firecracker(spec) ? Kernel.NEEDED_FIRECRACKER : Kernel.NEEDED, init,
                options.stateRoot().resolve("kernels"));
    }

    /** Firecracker boots only the ELF vmlinux; QEMU boots it when it has a PVH entry, else the bzImage. */
    private Path kernelFile(SandboxSpec spec, Kernel kernel) {
        Path kernels = options.stateRoot().resolve("kernels");
        return firecracker(spec) ? Vmlinux.ensure(kernel, kernels) : Vmlinux.forQemu(kernel, kernels);
    }

    static Path vmDir(SandboxSpec spec) {
        return spec.dir().resolve("vm");
    }

    private static void requireQemu() {
        for (String dir : List.of("/usr/bin", "/usr/local/bin", "/usr/sbin")) {
            if (Files.isExecutable(Path.of(dir, QemuCommand.BINARY))) return;
        }
        throw new KilnException(KilnException.Kind.UNAVAILABLE, "the vm isolation needs " + QemuCommand.BINARY
                + ", which is not installed (apt-get install qemu-system-x86)");
    }
}
