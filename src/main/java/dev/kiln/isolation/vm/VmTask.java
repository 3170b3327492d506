package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;
import dev.kiln.isolation.AttachConnection;
import dev.kiln.isolation.LogReader;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.RunningProcess;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.SandboxStats;
import dev.kiln.isolation.shim.Shim;
import dev.kiln.isolation.shim.ShimBinary;
import dev.kiln.isolation.shim.ShimTask;
import dev.kiln.rootfs.Trees;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * A VM sandbox's run: the relay under its kiln-shim, the VMM under the relay. Signals and execs go to the guest over
 * the relay's sockets (docs/guest-protocol.md); {@code top} is {@code ps} run in the guest; stats are the VMM
 * process's as the host sees them.
 */
final class VmTask extends ShimTask {

    private static final int SIGKILL = 9;
    private static final Duration TOP_TIMEOUT = Duration.ofSeconds(30);

    private final VmIsolator vm;
    private final SandboxSpec spec;

    VmTask(VmIsolator vm, SandboxSpec spec, Shim shim) {
        super(shim);
        this.vm = vm;
        this.spec = spec;
    }

    @Override
    public void kill(int signal) {
        if (shim.exitStatus().isPresent() || !shim.alive()) {
            throw KilnException.conflict("sandbox " + spec.name() + " is not running");
        }
        Optional<Long> vmm = vm.vmmPid(spec);
        try (AttachConnection c = shim.attach()) {
            c.signal(signal); // to the relay, which passes it to the guest's main process
        } catch (IOException e) {
            throw KilnException.conflict("cannot signal sandbox " + spec.name() + ": " + e.getMessage());
        }
        if (signal == SIGKILL) {
            // SIGKILL ends the relay (it cannot be passed on) and the VMM dies with it. Wait for the relay's end
            // first: killing the VMM before the relay got the signal would make the relay report a lost VM (125),
            // not 137.
            shim.await(Duration.ofSeconds(5));
            vmm.ifPresent(pid -> VmIsolator.killAndWait(pid, vm.vmm(spec).processName()));
        }
    }

    @Override
    public RunningProcess exec(String execId, ProcessSpec process, Duration waitAttach) {
        return execShim(execId, process, waitAttach);
    }

    private Shim execShim(String execId, ProcessSpec process, Duration waitAttach) {
        Path dir = spec.dir().resolve("x").resolve(execId.length() > 12 ? execId.substring(0, 12) : execId);
        Path request = dir.resolve("exec.spec");
        try {
            Files.createDirectories(dir);
            OwnerOnly.write(request, GuestSpec.exec(process)); // its env may hold secrets
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot write " + request + ": " + e.getMessage(), e);
        }
        Path shimBinary = ShimBinary.locate();
        return Shim.launch(shimBinary, dir, VmIsolator.shimOptions(process.tty(), process.stdin(), waitAttach,
                dir.resolve("log.json")), List.of(shimBinary.toString(), "--relay-exec",
                VmIsolator.vmDir(spec).resolve("exec.sock").toString(), request.toString()));
    }

    /** {@code ps} run inside the guest (the image must have one, as for {@code docker top}). */
    @Override
    public String top() {
        ProcessSpec p = spec.process();
        ProcessSpec ps = new ProcessSpec(List.of("ps"), p.env(), "/", 0, 0, List.of(), false, false);
        Shim x = execShim("top" + Long.toHexString(System.nanoTime()), ps, Duration.ZERO);
        try {
            int code = x.await(TOP_TIMEOUT).orElseThrow(() -> KilnException.conflict("ps in sandbox "
                    + spec.name() + " did not finish within " + TOP_TIMEOUT.toSeconds() + " s")).exitCode();
            String out = LogReader.of(x.dir()).all().stream().map(LogReader.LogRecord::text)
                    .collect(Collectors.joining());
            if (code != 0) {
                throw KilnException.conflict("cannot list processes of " + spec.name() + " (ps in the guest exited "
                        + code + ": guest: " + VmIsolator.guestText(out.strip().lines().reduce((a, b) -> b).orElse(""))
                        + ")");
            }
            return out;
        } finally {
            Trees.delete(x.dir());
        }
    }

    /** The VMM process's CPU time and resident memory, as the host sees them. */
    @Override
    public SandboxStats stats() {
        long pid = vm.vmmPid(spec).orElseThrow(() -> KilnException.conflict("sandbox " + spec.name()
                + " has no VM running"));
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime + stime, in USER_HZ (100 on Linux)
            String statm = Files.readString(Path.of("/proc", Long.toString(pid), "statm"));
            long rssPages = Long.parseLong(statm.split(" ")[1]);
            return new SandboxStats(ticks * 10_000_000L, rssPages * 4096, vm.memoryLimit(spec), 0);
        } catch (IOException | RuntimeException e) {
            throw KilnException.conflict("sandbox " + spec.name() + " has no VM running");
        }
    }

    /** The VMM stops the guest's vCPUs: every process in it freezes, its clock with them. */
    @Override
    public void pause() {
        requireVmm();
        vm.vmm(spec).pause(VmIsolator.vmDir(spec), true);
    }

    @Override
    public void resume() {
        requireVmm();
        vm.vmm(spec).pause(VmIsolator.vmDir(spec), false);
    }

    /** A VM's memory and vCPUs are the guest's hardware, fixed at boot (kiln has no balloon or CPU hot-plug). */
    @Override
    public void update(dev.kiln.isolation.Resources limits) {
        throw KilnException.conflict("a VM's memory, vCPUs and task limit are fixed at its boot: stop sandbox "
                + spec.name() + ", update it, and its next start boots with the new limits");
    }

    private void requireVmm() {
        if (vm.vmmPid(spec).isEmpty()) {
            throw KilnException.conflict("sandbox " + spec.name() + " has no VM running");
        }
    }

    /** The guest kernel's OOM killer is not reported yet. */
    @Override
    public boolean oomKilled() {
        return false;
    }

    /** The VMM (QEMU or Firecracker), the only host process the guest talks to. */
    @Override
    public List<Long> frontPids() {
        return vm.vmmPid(spec).map(List::of).orElse(List.of());
    }

    /** {@code vm/boot.log}: the guest's console, truncated at each boot and kept after the VM ended. */
    @Override
    public Optional<Path> bootLog() {
        return Optional.of(VmIsolator.vmDir(spec).resolve("boot.log"));
    }
}
