package dev.kiln.isolation.vm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The QEMU {@code microvm} command line of one sandbox (docs/vm.md), and what the relay does for it. QEMU runs in the
 * sandbox's VM directory (in its jail too, where that path exists with only {@code run/} in it), so the sockets'
 * paths are relative and never exceed a socket address; they are in {@code run/}, the one directory the VMM may
 * write. The disks are not opened by QEMU: the relay opens them and hands them over as descriptors ({@code -add-fd},
 * {@code /dev/fdset/N}), and the console is QEMU's stdout, which the relay points at {@code boot.log}; so the VMM
 * needs no path to either, jailed or not.
 *
 * @param kvm       use KVM ({@code /dev/kvm} usable); otherwise TCG with the host's TSC rate on the kernel command line
 * @param tscKhz    the host's TSC frequency for {@code tsc_early_khz} under TCG; 0 if unknown
 * @param nic       the network card's {@code -netdev}/{@code -device} arguments ({@link GuestNic}); empty: none
 * @param snapshotGuest the guest is (or is restored from) a snapshot's template: {@code kiln.snapshot} on its command
 *                  line, so kiln-init loads the disks' and the card's drivers after START (docs/vm.md, "Snapshot start")
 * @param restoreFrom the snapshot's state file: QEMU restores it ({@code -incoming fd:7}, the relay opens it) instead
 *                  of booting; null: a boot
 * @param ramFile   a snapshot's guest memory (docs/vm.md, "Snapshot start"): with {@code restoreFrom}, the snapshot's
 *                  {@code ram} file, which the relay copies into a memfd that QEMU maps as the guest's memory
 *                  ({@code memory-backend-file} on {@code run/ram}, {@code share=on}) before it loads the state
 *                  ({@code -incoming defer}, then {@code x-ignore-shared} and {@code migrate-incoming} over QMP); without,
 *                  a template's: where the relay writes that memory once the state is saved; null: QEMU's own memory
 */
record QemuCommand(Path kernel, Path initrd, Path imageDisk, Path writableDisk, long memoryMiB, int cpus,
                   boolean kvm, long tscKhz, List<String> nic, int shares, boolean snapshotGuest, Path restoreFrom,
                   Path ramFile) {

    /** Without shared directories, booted. */
    QemuCommand(Path kernel, Path initrd, Path imageDisk, Path writableDisk, long memoryMiB, int cpus, boolean kvm,
                long tscKhz, List<String> nic) {
        this(kernel, initrd, imageDisk, writableDisk, memoryMiB, cpus, kvm, tscKhz, nic, 0, false, null, null);
    }

    static final String BINARY = "qemu-system-x86_64";
    static final String CONTROL_SOCKET = "run/ctl.sock";
    static final String QMP_SOCKET = "run/qmp.sock";
    static final String BOOT_LOG = "boot.log";
    /** The descriptors the relay gives QEMU (kiln-shim --fd, --tap): the disks, and the TAP ({@link GuestNic}). */
    static final int IMAGE_FD = 3;
    static final int DISK_FD = 4;
    static final int DISK_READ_FD = 5; // the same disk read-only: the block layer reopens it so when it drops writes
    static final int TAP_FD = 6;
    static final int STATE_FD = 7; // a snapshot's state, read by -incoming
    /** The guest's memory when it is a snapshot's: a file on a tmpfs the relay mounts in the VMM's own mount namespace (run/mem). */
    static final String RAM = "run/mem/ram";
    /**
     * The id of the guest's memory backend: the one QEMU gives microvm's default memory, so that its RAM block has the
     * same name either way, and a checkpoint of a VM restored from a snapshot restores into QEMU's own memory.
     */
    static final String RAM_ID = "microvm.ram";
    /** QEMU's own seccomp filter, on top of kiln's (docs/vm.md, "The VMM's jail"): it refuses what kiln's allows for
     * its start-up only (execve, which kiln-shim's exec of QEMU needs) and costs nothing. */
    static final String SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";
    /**
     * Under TCG, what QEMU may fill with translated code beyond the guest's memory: its default code buffer on 64-bit
     * hosts, min(1 GiB, host RAM / 8) (QEMU's tcg/region.c; here its 1023 MiB rwx mapping), touched as code runs.
     */
    static final long TCG_CACHE = 1L << 30;

    List<String> argv() {
        return argv(Path.of(BINARY));
    }

    /** The command line with {@code binary} as the program: the path {@link Qemu} found, absolute (QEMU finds its
     * TCG module and firmware beside it, and the jail binds it at that path). */
    List<String> argv(Path binary) {
        // virtio-fs needs the guest's memory shared with virtiofsd (vhost-user maps it): a memfd QEMU passes over
        String machine = "microvm,x-option-roms=off,rtc=on,pit=on,pic=on" + (shares > 0 ? ",memory-backend=mem"
                : ramFile != null ? ",memory-backend=" + RAM_ID : "");
        List<String> a = new ArrayList<>(List.of(binary.toString(), "-M", machine));
        if (ramFile != null && shares == 0) {
            a.addAll(List.of("-object", "memory-backend-file,id=" + RAM_ID + ",size=" + memoryMiB + "M,mem-path=" + RAM
                    + ",share=on"));
        }
        if (shares > 0) {
            a.addAll(List.of("-object", "memory-backend-memfd,id=mem,size=" + memoryMiB + "M,share=on",
                    // virtiofsd's libvhost-user serves virtio 1.0 devices only; microvm's virtio-mmio is legacy
                    // by default (the guest's drivers take either)
                    "-global", "virtio-mmio.force-legacy=false"));
        }
        if (kvm) {
            a.addAll(List.of("-accel", "kvm", "-cpu", "host"));
        } else {
            a.addAll(List.of("-accel", "tcg", "-cpu", "max"));
        }
        a.addAll(List.of("-m", memoryMiB + "M", "-smp", Integer.toString(cpus),
                "-nodefaults", "-no-user-config", "-nographic", "-no-reboot"));
        if (restoreFrom == null || ramFile == null) {
            a.addAll(List.of("-kernel", kernel.toAbsolutePath().toString(),
                    "-initrd", initrd.toAbsolutePath().toString(),
                    "-append", cmdline()));
        } // a snapshot's restore runs no firmware: QEMU would read the 52 MB vmlinux and the initramfs into its
          // loader's buffers (~50 ms of CPU, ~90 MB of memory per start, measured) only to drop them unused
        a.addAll(List.of("-serial", "stdio"));
        if (imageDisk != null) { // none when the root is a shared directory (containerd's bundle: DirectoryVm)
            a.addAll(List.of("-add-fd", "fd=" + IMAGE_FD + ",set=1",
                    "-drive", "id=image,file=/dev/fdset/1,format=raw,if=none,readonly=on",
                    "-device", "virtio-blk-device,drive=image,serial=kiln-image",
                    "-add-fd", "fd=" + DISK_FD + ",set=2", "-add-fd", "fd=" + DISK_READ_FD + ",set=2",
                    // no OFD locks: the disk reaches only this QEMU, by descriptor; and a cont after a checkpoint's
                    // save (docs/checkpoint.md) re-takes them and fails ("Failed to get shared "write" lock")
                    "-drive", "id=rw,file=/dev/fdset/2,format=raw,if=none,discard=unmap,file.locking=off",
                    "-device", "virtio-blk-device,drive=rw,serial=kiln-rw"));
        }
        a.addAll(List.of("-device", "virtio-serial-device",
                "-chardev", "socket,id=ctl,path=" + CONTROL_SOCKET + ",server=on,wait=off",
                "-device", "virtserialport,chardev=ctl,name=kiln.0",
                "-qmp", "unix:" + QMP_SOCKET + ",server=on,wait=off",
                "-sandbox", SANDBOX));
        a.addAll(nic);
        for (int i = 0; i < shares; i++) { // VirtioFs: virtiofsd listens on run/fsN.sock, the guest mounts tag kilnN
            a.addAll(List.of("-chardev", "socket,id=fs" + i + ",path=" + VirtioFs.socket(i),
                    "-device", "vhost-user-fs-device,chardev=fs" + i + ",tag=" + VirtioFs.tag(i)));
        }
        if (restoreFrom != null) a.addAll(List.of("-incoming", ramFile != null ? "defer" : "fd:" + STATE_FD));
        return a;
    }

    /**
     * The relay's options for this command line (before the network's and the jail's): the console into boot.log,
     * the control socket in {@code run/}, the disks opened by the relay (as root: the shared image disk stays
     * 0600) and given as descriptors.
     */
    List<String> relayOptions() {
        List<String> o = new ArrayList<>(List.of("--console-stdout", "--ctl-sock", CONTROL_SOCKET));
        if (imageDisk != null) {
            String disk = writableDisk.toAbsolutePath().toString();
            o.addAll(List.of("--fd", IMAGE_FD + ":ro:" + imageDisk.toAbsolutePath(),
                    "--fd", DISK_FD + ":rw:" + disk, "--fd", DISK_READ_FD + ":ro:" + disk));
        }
        if (restoreFrom != null) o.addAll(List.of("--fd", STATE_FD + ":ro:" + restoreFrom.toAbsolutePath()));
        if (ramFile != null && shares == 0) {
            o.addAll(List.of("--ram-file", ramFile.toAbsolutePath().toString(), "--ram-mib", Long.toString(memoryMiB)));
            if (restoreFrom != null) o.addAll(List.of("--incoming", Integer.toString(STATE_FD), "--qmp-sock", QMP_SOCKET));
        }
        return o;
    }

    /** Under TCG the kernel must not calibrate the TSC against the emulated PIT (DESIGN.md §4: it hangs sometimes). */
    String cmdline() {
        // init_on_free: a snapshot's template zeroes what it frees (the initramfs's cpio, the kernel's init code), so
        // its state holds only what the guest uses (zero pages take a few bytes in it) and restores that much faster
        // kiln.early-blk: the template binds virtio_blk to its placeholders (kiln-init's early_disk)
        String c = "console=ttyS0 quiet panic=-1" + (snapshotGuest ? " kiln.snapshot kiln.early-blk init_on_free=1"
                : "");
        return kvm || tscKhz <= 0 ? c : c + " tsc_early_khz=" + tscKhz;
    }

    private static volatile Boolean kvmProbed;

    /**
     * Whether QEMU can really use KVM here: {@code /dev/kvm} being there is not enough (a nested or paravirtual KVM
     * may refuse the CPU's MSRs), so a paused microvm is started once with {@code -accel kvm} and told to quit over
     * QMP; KVM is used when that succeeds. {@code -Dkiln.vm.accel=tcg|kvm} decides instead.
     */
    static boolean kvmUsable() {
        String forced = System.getProperty("kiln.vm.accel", "");
        if (!forced.isEmpty()) return forced.equals("kvm");
        Boolean known = kvmProbed;
        if (known != null) return known;
        Path dev = Path.of("/dev/kvm");
        boolean usable = Files.isReadable(dev) && Files.isWritable(dev) && probeKvm();
        kvmProbed = usable;
        return usable;
    }

    private static boolean probeKvm() {
        try {
            Process p = new ProcessBuilder(BINARY, "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-nodefaults",
                    "-no-user-config", "-display", "none", "-S", "-qmp", "stdio")
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            try (var in = p.getOutputStream()) {
                in.write("{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n"
                        .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            } catch (IOException e) {
                // it died already: the exit code tells
            }
            if (!p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return false;
            }
            return p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** The host's TSC rate in kHz: sysfs where the kernel exports it, else cpu0's "cpu MHz"; 0 if neither says. */
    static long hostTscKhz() {
        try {
            Path sys = Path.of("/sys/devices/system/cpu/cpu0/tsc_freq_khz");
            if (Files.isReadable(sys)) return Long.parseLong(Files.readString(sys).strip());
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("cpu MHz")) {
                    return Math.round(Double.parseDouble(line.substring(line.indexOf(':') + 1).strip()) * 1000);
                }
            }
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
        return 0;
    }
}
