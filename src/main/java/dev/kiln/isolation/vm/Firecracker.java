package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.isolation.Availability;
import dev.kiln.isolation.RuntimeBinary;
import dev.kiln.isolation.SandboxNetwork;
import dev.kiln.isolation.SandboxOptions;
import dev.kiln.isolation.vm.jail.VmmJail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Firecracker as the vm isolation's VMM ({@code --runtime firecracker}, docs/vm.md "Firecracker"): the ELF vmlinux,
 * the VM configured by API requests the relay sends ({@link FirecrackerCommand#requests}, written to
 * {@code boot.http}), kiln's control channel on Firecracker's hybrid vsock, where the relay listens and the guest
 * connects; KVM only, no user-mode network, no quit request (a kill is its hard stop).
 */
public final class Firecracker implements Vmm {

    static final String RUNTIME = FirecrackerCommand.BINARY;
    private static final Duration API_TIMEOUT = Duration.ofSeconds(5);

    private final RuntimeBinary binary;
    /** kiln's kernel and initramfs caches: the jail makes their files readable to the VMM's uid (public content). */
    private final Path kernelsDir;

    Firecracker(Map<String, Path> runtimePaths, Path kernelsDir) {
        this.binary = RuntimeBinary.of(FirecrackerCommand.BINARY, "no Debian package exists", runtimePaths);
        this.kernelsDir = kernelsDir;
    }

    Firecracker(Map<String, Path> runtimePaths) {
        this(runtimePaths, Path.of("/var/lib/kiln/kernels"));
    }

    /** What this host lacks for Firecracker, one reason each; empty when the binary and a working /dev/kvm are here. */
    public static List<String> missing() {
        return new Firecracker(Map.of()).lacking();
    }

    /**
     * Empty when the binary is found and /dev/kvm works (opened read-write, and QEMU's KVM probe passes when QEMU is
     * installed: a /dev/kvm that exists may still refuse VMs, docs/vm.md).
     */
    List<String> lacking() {
        List<String> missing = new ArrayList<>();
        if (binary.locate().isEmpty()) {
            missing.add(binary.configured() != null ? "firecracker binary not found at " + binary.configured()
                    + " (runtime-paths in kilnd's config file)"
                    : "firecracker binary not found on PATH; no Debian package exists");
        }
        Path kvm = Path.of("/dev/kvm");
        if (!Files.exists(kvm)) {
            missing.add("/dev/kvm not usable: it does not exist");
        } else if (!Files.isReadable(kvm) || !Files.isWritable(kvm)) {
            missing.add("/dev/kvm not usable: not readable and writable by this user");
        } else if (RuntimeBinary.of(QemuCommand.BINARY, "", Map.of()).locate().isPresent()
                && !QemuCommand.kvmUsable()) {
            missing.add("/dev/kvm not usable: it exists, but a VM cannot run on it (QEMU's KVM probe failed, "
                    + "or -Dkiln.vm.accel=tcg; docs/vm.md)");
        }
        return missing;
    }

    @Override
    public String runtimeName() {
        return RUNTIME;
    }

    @Override
    public String binaryName() {
        return FirecrackerCommand.BINARY;
    }

    @Override
    public String processName() {
        return FirecrackerCommand.BINARY;
    }

    /** Never QEMU silently in its place: what this host lacks is the sandbox's one line. */
    @Override
    public Availability availability() {
        List<String> missing = lacking();
        return missing.isEmpty() ? Availability.AVAILABLE : Availability.missing("the firecracker runtime needs the "
                + "firecracker binary and /dev/kvm: " + String.join("; ", missing) + " (use --runtime qemu)");
    }

    @Override
    public void require() {
        availability().require();
    }

    /** KVM only: no translation cache. */
    @Override
    public long memoryOverhead() {
        return 0;
    }

    @Override
    public void check(SandboxOptions options) {
        if (options.network() == SandboxNetwork.Mode.USER) {
            throw KilnException.invalid("--network user is QEMU's slirp; the firecracker runtime has the kiln "
                    + "bridge (the default) or --network none");
        }
    }

    @Override
    public List<String> guestModules() {
        return Kernel.NEEDED_FIRECRACKER;
    }

    /** Firecracker boots only an ELF vmlinux. */
    @Override
    public Path kernelFile(Kernel kernel, Path kernelsDir) {
        return Vmlinux.ensure(kernel, kernelsDir);
    }

    @Override
    public List<String> bootFiles() {
        return List.of(FirecrackerCommand.API_SOCKET, FirecrackerCommand.VSOCK_SOCKET,
                FirecrackerCommand.controlSocket(), FirecrackerCommand.REQUESTS_FILE,
                FirecrackerCommand.PLACEHOLDER_IMAGE.toString(), FirecrackerCommand.PLACEHOLDER_RW.toString());
    }

    /**
     * The relay, not kilnd, sends the boot sequence: with --wait-attach the outer shim starts the relay (and so
     * Firecracker) only when the first client attaches, after start() has returned; and the relay must be listening
     * on the vsock socket before InstanceStart, which only it can order (docs/vm.md). With {@code m.jailUid()} it
     * runs in kiln's jail ({@link VmmJail#forFirecracker}), not Firecracker's own {@code jailer}, even where that is
     * installed: one jail for both VMMs, set up by the relay that stays its parent (docs/vm.md). Every path in the
     * requests is absolute or under {@code run/}, and bound at that same path in the jail, so the requests are the
     * same jailed or not.
     */
    @Override
    public Launch launch(Machine m, Path vmDir) {
        FirecrackerCommand fc = new FirecrackerCommand(instanceId(m.sandboxId()), m.kernel(), m.initrd(),
                m.imageDisk(), m.writableDisk(), m.memoryMiB(), m.cpus(), m.nic());
        Path state = m.restoreFrom();
        VmmJail.Network network = m.nic() == null ? VmmJail.Network.NONE : VmmJail.Network.SANDBOX;
        if (state == null) return launch(fc, vmDir, fc.requests(), m.jailUid(), network, List.of(), false, List.of());
        // a vm-snapshot's (shared by its shape's VMs, loaded over this VM's own placeholder drives, then sent START)
        // or a checkpoint's (this sandbox's alone, its workload resumed: no START)
        boolean shared = FirecrackerSnapshot.isSnapshot(state);
        Path mem = shared ? FirecrackerSnapshot.memOf(state) : state.resolveSibling(FirecrackerCheckpoint.MEM);
        return launch(fc, vmDir, fc.restoreRequests(state, mem), m.jailUid(), network, List.of(state, mem), shared,
                shared ? FirecrackerSnapshot.placeholders(vmDir) : List.of());
    }

    /**
     * The template of {@code shape}'s snapshot (docs/vm.md, "On Firecracker"): a sandbox's boot with {@code
     * kiln.snapshot}, its drives the placeholders in its directory, named by relative paths; a shape with a card has
     * one on a TAP the relay makes in the template's own network namespace, so it needs the jail (refused without).
     */
    FirecrackerSnapshot.Template template(FirecrackerCheckpoint.Shape shape) {
        return (vmDir, uid) -> {
            if (shape.nic() && uid == null) {
                throw new IllegalStateException("a Firecracker template with a card needs its jail's own namespace");
            }
            FirecrackerCommand fc = new FirecrackerCommand("snapshot-" + FirecrackerSnapshot.key(shape),
                    shape.kernel(), shape.initrd(), vmDir.resolve(FirecrackerCommand.PLACEHOLDER_IMAGE),
                    vmDir.resolve(FirecrackerCommand.PLACEHOLDER_RW), shape.memoryMiB(), shape.vcpus(), null);
            return launch(fc, vmDir, fc.templateRequests(shape.nic()), uid, shape.nic() ? VmmJail.Network.TEMPLATE
                    : VmmJail.Network.NONE, List.of(), false, List.of());
        };
    }

    private Launch launch(FirecrackerCommand fc, Path vmDir, List<FirecrackerApi.Request> sequence, Integer jailUid,
                          VmmJail.Network network, List<Path> snapshot, boolean shared, List<Path> placeholders) {
        Path requests = vmDir.resolve(FirecrackerCommand.REQUESTS_FILE);
        try {
            Files.createDirectories(vmDir.resolve(VmmJail.RUN)); // its sockets' directory; the jail makes it the VMM's
            Files.write(requests, FirecrackerApi.script(sequence));
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot write " + requests + ": " + e.getMessage(), e);
        }
        Path firecracker = binary.path("the firecracker runtime").toAbsolutePath();
        List<String> relay = new ArrayList<>(List.of("--api-sock", FirecrackerCommand.API_SOCKET,
                "--api-requests", FirecrackerCommand.REQUESTS_FILE,
                "--listen", FirecrackerCommand.controlSocket(), "--console-stdout"));
        // a checkpoint's guest continues a started workload: the relay sends no START and takes its channel as started
        if (!snapshot.isEmpty() && !shared) relay.add("--resume");
        VmmJail jail = null;
        if (jailUid != null) {
            jail = VmmJail.forFirecracker(vmDir, jailUid, firecracker, fc.bootFiles(), kernelsDir,
                    fc.imageDisk(), fc.writableDisk(), network, snapshot, shared, placeholders);
            relay.addAll(jail.relayOptions());
            if (network == VmmJail.Network.TEMPLATE) relay.addAll(List.of("--jail-tap", GuestNic.TAP));
        }
        return new Launch(relay, fc.argv(firecracker), jail);
    }

    /**
     * In kiln's jail, with Firecracker's own seccomp filters instead of kiln's (docs/vm.md, "Firecracker in the
     * jail").
     */
    @Override
    public boolean jails() {
        return true;
    }

    /** {@code PATCH /vm} on its API socket: returns once Firecracker has answered (its vCPUs stopped or running). */
    @Override
    public void pause(Path vmDir, boolean paused) {
        try {
            new FirecrackerApi(vmDir.resolve(FirecrackerCommand.API_SOCKET), API_TIMEOUT)
                    .send(FirecrackerApi.vmState(paused));
        } catch (KilnException e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot " + (paused ? "pause" : "unpause")
                    + " the VM: " + e.getMessage());
        }
    }

    /** The shape of {@code m}'s VM, for its checkpoint. */
    FirecrackerCheckpoint.Shape shape(Machine m) {
        return FirecrackerCheckpoint.Shape.of(m, binary.path("the firecracker runtime").toAbsolutePath());
    }

    /** Firecracker has no quit request: killing it is its hard stop. */
    @Override
    public void quit(Path vmDir) {
    }

    /** Firecracker's {@code --id} ({@code [A-Za-z0-9-]}, ≤ 64): the sandbox's id, which is 64 hex digits. */
    static String instanceId(String sandboxId) {
        String id = sandboxId.replaceAll("[^A-Za-z0-9-]", "-");
        return id.length() > 64 ? id.substring(0, 64) : id;
    }
}
