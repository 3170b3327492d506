package dev.kiln.isolation.vm;

import dev.kiln.isolation.Availability;
import dev.kiln.isolation.SandboxOptions;

import dev.kiln.isolation.vm.jail.VmmJail;

import java.nio.file.Path;
import java.util.List;

/**
 * A virtual machine monitor the vm isolation boots its sandboxes on (docs/vm.md): {@link Qemu} (microvm, the default)
 * or {@link Firecracker} ({@code --runtime firecracker}). Everything else of a VM (image disk, writable disk,
 * kiln-init, the relay, the guest protocol, exec, signals, logs) is the same on both; a VMM says only what differs:
 * its binary and whether this host can run it, the kernel file and guest modules it boots, what it cannot give a
 * sandbox, its command line with what the relay must do before the guest speaks (the control channel: QEMU's
 * virtio-serial socket the relay connects to, or Firecracker's hybrid vsock the relay listens on, after the API
 * requests that configure the VM), the files of one boot, and how a VMM left running is asked to quit.
 */
sealed interface Vmm permits Qemu, Firecracker {

    /**
     * One VM as the isolator sized and prepared it. Per-boot files (sockets, the console) are relative to the
     * sandbox's {@code vm/} directory, where the relay runs the VMM.
     *
     * @param nic     the network card, null for none
     * @param jailUid the uid (and gid) the VMM runs as in its jail ({@link #jails}); null: no jail
     * @param restoreFrom the state file the VMM restores instead of booting: a vm-snapshot's or a checkpoint's; null: a boot
     */
    record Machine(String sandboxId, Path kernel, Path initrd, Path imageDisk, Path writableDisk, long memoryMiB,
                   int cpus, GuestNic nic, Integer jailUid, int shares, Path restoreFrom) {

        /** Without shared directories, booted. */
        Machine(String sandboxId, Path kernel, Path initrd, Path imageDisk, Path writableDisk, long memoryMiB,
                int cpus, GuestNic nic, Integer jailUid) {
            this(sandboxId, kernel, initrd, imageDisk, writableDisk, memoryMiB, cpus, nic, jailUid, 0, null);
        }
    }

    /**
     * What the relay runs: its own options for this VMM (before {@code --}), then the VMM's command line.
     *
     * @param jail the VMM's jail, its options among relayOptions; null: none
     */
    record Launch(List<String> relayOptions, List<String> argv, VmmJail jail) {
        public Launch {
            relayOptions = List.copyOf(relayOptions);
            argv = List.copyOf(argv);
        }
    }

    /**
     * Whether kiln runs this VMM in its jail (docs/vm.md, "The VMM's jail"): both do; QEMU under kiln's seccomp
     * allowlist, Firecracker under its own per-thread filters.
     */
    boolean jails();

    /** The Docker runtime name that picks this VMM ({@code --runtime qemu}, {@code --runtime firecracker}). */
    String runtimeName();

    /** The VMM's program, as inspect shows it. */
    String binaryName();

    /** The start of the VMM process's name in {@code /proc/PID/comm}: a reused pid is told apart by it. */
    String processName();

    /** Whether this host can run it, and if not, what it lacks. */
    Availability availability();

    /** Throws what this host lacks ({@link #availability}); QEMU also notes once in kilnd's log that it runs on TCG. */
    void require();

    /** Host memory it may use beyond the guest's and its own usual share, for its cgroup's limit. */
    long memoryOverhead();

    /** Refuses with one line what it cannot give a sandbox (Firecracker: the user-mode network, which is QEMU's). */
    void check(SandboxOptions options);

    /** The kernel modules kiln-init loads for this VMM's devices and control channel. */
    List<String> guestModules();

    /** The kernel file it boots, made from {@code kernel} in the cache {@code kernelsDir} where it needs another. */
    Path kernelFile(Kernel kernel, Path kernelsDir);

    /** Files one boot leaves in {@code vm/} that the next boot must not find. */
    List<String> bootFiles();

    /** What the relay runs for {@code machine}; what the relay reads (Firecracker's requests) goes to {@code vmDir}. */
    Launch launch(Machine machine, Path vmDir);

    /** Asks a VMM left running to quit before it is killed (QEMU: QMP {@code quit}); none where a kill is its stop. */
    void quit(Path vmDir);

    /**
     * Stops ({@code paused}) or continues the guest's vCPUs of a running VM, returning once done (QEMU: QMP
     * {@code stop}/{@code cont}); refused with one line where the VMM cannot.
     */
    void pause(Path vmDir, boolean paused);
}
