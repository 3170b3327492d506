package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.isolation.Availability;
import dev.kiln.isolation.RuntimeBinary;
import dev.kiln.isolation.SandboxOptions;
import dev.kiln.isolation.vm.jail.VmmJail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * QEMU {@code microvm}, the vm isolation's default VMM: the bzImage (or a vmlinux with a PVH entry), kiln's control
 * channel on a virtio-serial port whose socket QEMU listens on and the relay connects to ({@code run/ctl.sock}), QMP
 * for a clean quit, KVM where it works and TCG otherwise, in its jail by default (docs/vm.md).
 */
final class Qemu implements Vmm {
    private static final KilnLog LOG = KilnLog.of(Qemu.class);

    static final String RUNTIME = "qemu";
    private static final Duration QMP_TIMEOUT = Duration.ofSeconds(2);
    private static final AtomicBoolean TCG_NOTED = new AtomicBoolean();

    private final RuntimeBinary binary;
    /** kiln's kernel and initramfs caches: the jail makes their files readable to the VMM's uid (public content). */
    private final Path kernelsDir;

    Qemu(Map<String, Path> runtimePaths, Path kernelsDir) {
        this.binary = RuntimeBinary.of(QemuCommand.BINARY, "apt-get install qemu-system-x86", runtimePaths);
        this.kernelsDir = kernelsDir;
    }

    @Override
    public String runtimeName() {
        return RUNTIME;
    }

    @Override
    public String binaryName() {
        return QemuCommand.BINARY;
    }

    @Override
    public String processName() {
        return "qemu-system";
    }

    @Override
    public Availability availability() {
        return binary.availability("the vm isolation");
    }

    @Override
    public void require() {
        availability().require();
        if (!accelerated() && TCG_NOTED.compareAndSet(false, true)) {
            LOG.info("notice: /dev/kvm is not usable here, so VMs run under QEMU's TCG emulation "
                    + "(seconds per boot; docs/vm.md)");
        }
    }

    /** Whether VMs run with KVM here (else TCG: emulated, seconds per boot). */
    static boolean accelerated() {
        return QemuCommand.kvmUsable();
    }

    /** Under TCG, the translation cache it fills as the guest runs ({@link QemuCommand#TCG_CACHE}). */
    @Override
    public long memoryOverhead() {
        return accelerated() ? 0 : QemuCommand.TCG_CACHE;
    }

    @Override
    public void check(SandboxOptions options) {
        // every network mode of the vm isolation is QEMU's
    }

    @Override
    public List<String> guestModules() {
        return Kernel.NEEDED;
    }

    /** The vmlinux when it has a PVH entry (faster to load), else the bzImage. */
    @Override
    public Path kernelFile(Kernel kernel, Path kernelsDir) {
        return Vmlinux.forQemu(kernel, kernelsDir);
    }

    @Override
    public List<String> bootFiles() {
        return List.of(QemuCommand.CONTROL_SOCKET, QemuCommand.QMP_SOCKET);
    }

    /**
     * QEMU listens on the control socket itself (in {@code run/}); the relay opens the disks and the TAP for it,
     * writes its console to boot.log and, with {@code m.jailUid()}, runs it in its jail (docs/vm.md). The command
     * line is the same jailed or not.
     */
    @Override
    public Launch launch(Machine m, Path vmDir) {
        boolean kvm = QemuCommand.kvmUsable();
        QemuCommand cmd = new QemuCommand(m.kernel(), m.initrd(), m.imageDisk(), m.writableDisk(), m.memoryMiB(),
                m.cpus(), kvm, QemuCommand.hostTscKhz(), m.nic() == null ? List.of() : m.nic().qemuArgs(),
                m.shares(), m.restoreFrom() != null, m.restoreFrom(), VmSnapshot.ramOf(m.restoreFrom()));
        List<String> relay = new ArrayList<>(cmd.relayOptions());
        if (m.nic() != null) relay.addAll(m.nic().relayOptions());
        VmmJail.Network net = m.nic() == null ? VmmJail.Network.NONE
                : m.nic().netns() == null ? VmmJail.Network.USER : VmmJail.Network.SANDBOX;
        // every VM gets the snapshot trait (two syscalls): any running one may be checkpointed (docs/checkpoint.md)
        return launch(cmd, relay, m.jailUid(), net, vmDir, true, m.shares() > 0);
    }

    /**
     * The template of a snapshot of {@code shape} (docs/vm.md, "Snapshot start"): a sandbox's command line with
     * {@code kiln.snapshot} for kiln-init, placeholder disks, and, for a shape with a card, a card on a hub port of
     * its own (no host side: the guest brings it up only after START, as the restored VM's own card).
     */
    VmSnapshot.Template template(VmSnapshot.Shape shape, Path kernel, Path initrd) {
        return (vmDir, image, disk, uid) -> {
            List<String> nic = shape.nic() ? List.of("-netdev", "hubport,id=net0,hubid=0",
                    "-device", "virtio-net-device,netdev=net0,mac=" + VmSnapshot.TEMPLATE_MAC)
                    : List.of();
            QemuCommand cmd = new QemuCommand(kernel, initrd, image, disk, shape.memoryMiB(), shape.cpus(),
                    shape.kvm(), shape.tscKhz(), nic, 0, true, null, vmDir.resolve(VmSnapshot.RAM));
            return launch(cmd, new ArrayList<>(cmd.relayOptions()), uid, VmmJail.Network.NONE, vmDir, true, false);
        };
    }

    /** The shape of {@code m}'s VM, for its snapshot. */
    VmSnapshot.Shape shape(Vmm.Machine m) {
        return VmSnapshot.Shape.of(m.kernel(), m.initrd(), m.memoryMiB(), m.cpus(), m.nic() != null,
                QemuCommand.kvmUsable(), QemuCommand.kvmUsable() ? 0 : QemuCommand.hostTscKhz(), binaryPath());
    }

    /** QEMU's binary, absolute (the jail binds it and its libraries). */
    Path binaryPath() {
        return binary.path("the vm isolation").toAbsolutePath();
    }

    private Launch launch(QemuCommand cmd, List<String> relay, Integer jailUid, VmmJail.Network net, Path vmDir,
                          boolean snapshot, boolean sharedDirs) {
        boolean kvm = cmd.kvm();
        Path qemu = binaryPath();
        try {
            Files.createDirectories(vmDir.resolve(VmmJail.RUN)); // its sockets' directory; the jail makes it the VMM's
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot create " + vmDir.resolve(VmmJail.RUN) + ": "
                    + e.getMessage(), e);
        }
        VmmJail jail = null;
        if (jailUid != null) {
            jail = VmmJail.forQemu(vmDir, jailUid, qemu, List.of(cmd.kernel(), cmd.initrd()), kernelsDir, kvm, net,
                    snapshot, sharedDirs);
            relay.addAll(jail.relayOptions());
        }
        return new Launch(relay, cmd.argv(qemu), jail);
    }

    @Override
    public boolean jails() {
        return true;
    }

    /** QMP {@code stop} returns once every vCPU is paused; {@code cont} runs them again. */
    @Override
    public void pause(Path vmDir, boolean paused) {
        try (Qmp qmp = Qmp.connect(vmDir.resolve(QemuCommand.QMP_SOCKET), QMP_TIMEOUT)) {
            qmp.execute(paused ? "stop" : "cont");
        } catch (IOException e) {
            throw new dev.kiln.KilnException(dev.kiln.KilnException.Kind.UNAVAILABLE, "cannot "
                    + (paused ? "pause" : "unpause") + " the VM: QEMU's control socket: " + e.getMessage());
        }
    }

    @Override
    public void quit(Path vmDir) {
        try (Qmp qmp = Qmp.connect(vmDir.resolve(QemuCommand.QMP_SOCKET), QMP_TIMEOUT)) {
            qmp.execute("quit");
        } catch (IOException e) {
            // the caller kills it
        }
    }
}
