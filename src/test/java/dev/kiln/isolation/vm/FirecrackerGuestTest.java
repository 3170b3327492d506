package dev.kiln.isolation.vm;

import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.Resources;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.shim.ShimBinary;
import dev.kiln.testing.BusyboxRootfs;
import dev.kiln.testing.Command;
import dev.kiln.testing.VmTests;
import org.apache.commons.compress.archivers.cpio.CpioArchiveEntry;
import org.apache.commons.compress.archivers.cpio.CpioArchiveInputStream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The guest side of the firecracker runtime, as far as it runs without Firecracker: the initramfs's module set
 * resolved against this host's real cloud kernel (its modules.dep), and kiln-init's transport selection from the
 * kernel command line, booted for real on QEMU (which has no vsock device here: no /dev/vhost-vsock), where it must
 * pick vsock, load the vsock modules, and give up with one bounded error line. Not a Firecracker test.
 */
class FirecrackerGuestTest {

    @TempDir
    Path dir;

    static List<String> names(List<Path> modules) {
        return modules.stream().map(p -> Kernel.moduleName(p.toString())).toList();
    }

    static Kernel kernelWithModules() {
        Kernel k = VmlinuxTest.hostKernel();
        Assumptions.assumeTrue(k.modulesDir() != null, "no /lib/modules/" + k.version() + " for " + k.image());
        return k;
    }

    @Test
    void theFirecrackerModuleSetResolvesThroughTheKernelsModulesDep() throws IOException {
        Kernel k = kernelWithModules();
        List<Path> files = k.modules(Kernel.NEEDED_FIRECRACKER);
        List<String> names = names(files);
        System.out.println("firecracker initramfs modules for " + k.version() + ": " + String.join(" ", names));

        // every module comes after each of its dependencies, as modules.dep lists them
        Map<String, List<String>> deps = new HashMap<>();
        for (String line : Files.readAllLines(k.modulesDir().resolve("modules.dep"))) {
            int colon = line.indexOf(':');
            if (colon < 0) continue;
            String rest = line.substring(colon + 1).strip();
            deps.put(Kernel.moduleName(line.substring(0, colon)), rest.isEmpty() ? List.of()
                    : List.of(rest.split("\\s+")).stream().map(Kernel::moduleName).toList());
        }
        for (int i = 0; i < names.size(); i++) {
            for (String dep : deps.getOrDefault(names.get(i), List.of())) {
                assertThat(names.subList(0, i)).as(names.get(i) + " needs " + dep + " loaded first").contains(dep);
            }
        }
        assertThat(names).contains("vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
                "virtio_mmio", "virtio_blk", "virtio_net").doesNotContain("virtio_console");
        assertThat(names.indexOf("vsock")).isLessThan(names.indexOf("vmw_vsock_virtio_transport_common"));
        assertThat(names.indexOf("vmw_vsock_virtio_transport_common")).isLessThan(
                names.indexOf("vmw_vsock_virtio_transport"));
        if (k.version().matches("6\\.1\\.0-\\d+-cloud-amd64")) { // the set docs/vm.md names for Debian's cloud kernel
            assertThat(names).containsExactly("virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "failover",
                    "net_failover", "virtio_net", "vsock", "vmw_vsock_virtio_transport_common",
                    "vmw_vsock_virtio_transport", "libcrc32c", "erofs", "overlay");
        }
        // QEMU's set is unchanged: the virtio-serial port, no vsock
        assertThat(names(k.modules())).contains("virtio_console").doesNotContain("vsock");
    }

    @Test
    void theFirecrackerInitramfsCarriesKilnInitAndTheModulesInLoadOrder() throws IOException {
        Kernel k = kernelWithModules();
        Path init = NativeBinary.init();
        Path fc = Initramfs.ensure(k, Kernel.NEEDED_FIRECRACKER, init, dir);
        Path qemu = Initramfs.ensure(k, init, dir);
        assertThat(fc).as("each module set has its own cached initramfs").isNotEqualTo(qemu);

        Map<String, byte[]> entries = new HashMap<>();
        try (InputStream in = Files.newInputStream(fc); CpioArchiveInputStream cpio = new CpioArchiveInputStream(in)) {
            for (CpioArchiveEntry e = cpio.getNextCPIOEntry(); e != null; e = cpio.getNextCPIOEntry()) {
                entries.put(e.getName(), cpio.readAllBytes());
            }
        }
        assertThat(entries.get("init")).isEqualTo(Files.readAllBytes(init));
        List<String> order = new ArrayList<>();
        for (String name : names(k.modules(Kernel.NEEDED_FIRECRACKER))) order.add("/modules/" + name + ".ko");
        assertThat(new String(entries.get("modules.order"), StandardCharsets.UTF_8).lines()).containsExactlyElementsOf(order);
        for (String path : order) assertThat(entries).containsKey(path.substring(1));
    }

    /**
     * kiln-init booted with the Firecracker command line's {@code kiln.channel=vsock:1024} and the Firecracker
     * initramfs, on QEMU with no vsock device: it loads every module (the vsock ones included), picks the vsock
     * transport over the virtio-serial port QEMU offers, retries the connection for its bounded 10 s and powers off
     * with one line. This is the guest's selection and its bound, not a connection: that needs Firecracker.
     */
    @Test
    @Tag("slow")
    void kilnInitPicksVsockFromTheCommandLineAndGivesUpWithinItsBound() throws Exception {
        VmTests.require();
        Kernel k = kernelWithModules();
        Path initrd = Initramfs.ensure(k, Kernel.NEEDED_FIRECRACKER, NativeBinary.init(), dir.resolve("kernels"));
        Path kernel = Vmlinux.forQemu(k, dir.resolve("kernels"));
        Path image = Files.write(dir.resolve("image.img"), new byte[1 << 20]); // never mounted: the guest stops first
        Path disk = Files.write(dir.resolve("rw.img"), new byte[1 << 20]);
        Path vm = Files.createDirectories(dir.resolve("vm"));
        Files.createDirectories(vm.resolve("run")); // QEMU's sockets' directory (Qemu.launch makes it for kiln)
        QemuCommand qemu = new QemuCommand(kernel, initrd, image, disk, 256, 1, QemuCommand.kvmUsable(),
                QemuCommand.hostTscKhz(), List.of());
        List<String> argv = new ArrayList<>(qemu.argv());
        int append = argv.indexOf("-append") + 1;
        argv.set(append, argv.get(append) + " kiln.channel=vsock:" + FirecrackerCommand.CONTROL_PORT);

        // through the relay, which opens the disks for QEMU and writes its console to boot.log (no jail: not its test)
        Files.write(vm.resolve("start.spec"), "arg=true\0".getBytes(StandardCharsets.US_ASCII));
        List<String> cmd = new ArrayList<>(List.of(ShimBinary.locate().toString(), "--relay-vm", "--dir",
                vm.toString(), "--spec", vm.resolve("start.spec").toString(), "--hello-timeout", "60"));
        cmd.addAll(qemu.relayOptions());
        cmd.add("--");
        cmd.addAll(argv);
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("relay.log").toFile()).start();
        try {
            assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("the guest powers off by itself").isTrue();
        } finally {
            p.destroyForcibly();
        }
        long ms = (System.nanoTime() - t0) / 1_000_000;
        String console = Files.exists(vm.resolve(QemuCommand.BOOT_LOG)) ? Files.readString(vm.resolve(QemuCommand.BOOT_LOG)) : "";
        System.out.println("guest console after " + ms + " ms:\n" + console.strip() + "\nQEMU: "
                + Files.readString(vm.resolve("vmm.log")).strip());
        assertThat(console).doesNotContain("loading module").doesNotContain("socket(AF_VSOCK)")
                .contains("kiln-init: connecting to the host on vsock port 1024: ")
                .contains(" after 10000 ms");
        assertThat(console).as("the virtio-serial port QEMU offers is not used").doesNotContain("kiln.0");
        assertThat(ms).as("bounded: 10 s of retries plus the boot").isGreaterThan(10_000);
    }

    /**
     * kiln-init with Firecracker's {@code kiln.disks=fs}, on QEMU through the relay (the virtio-serial channel): the
     * drives carry no serial (as on Firecracker) and come in the other order (writable first), and the guest must
     * still mount the erofs image and the ext4 disk by their filesystems and run the workload.
     */
    @Test
    @Tag("slow")
    void kilnInitTellsTheDisksApartByTheirFilesystemsWhenAskedTo() throws Exception {
        VmTests.require();
        Command.require("mkfs.erofs", "erofs-utils");
        Kernel k = kernelWithModules();
        Path initrd = Initramfs.ensure(k, NativeBinary.init(), dir.resolve("kernels"));
        Path kernel = Vmlinux.forQemu(k, dir.resolve("kernels"));
        Path image = ImageDisk.ensure(BusyboxRootfs.create(dir.resolve("rootfs")), dir.resolve("disks"));
        Path rw = WritableDisk.ensure(dir.resolve("disk.ext4"), 64L << 20);
        Path vm = Files.createDirectories(dir.resolve("vm"));
        Files.createDirectories(vm.resolve("run")); // QEMU's sockets' directory (Qemu.launch makes it for kiln)
        SandboxSpec spec = new SandboxSpec("fsdisks", "fsdisks", "fsdisks", new ProcessSpec(List.of("sh", "-c",
                "echo written > /marker; echo hi"), List.of("PATH=/bin:/usr/bin"), "/", 0, 0,
                List.of(), false, false), image, false, Resources.UNLIMITED, Map.of(), List.of(), dir);
        Files.write(vm.resolve("start.spec"), GuestSpec.start(spec, null, -1, -1));

        QemuCommand qemu = new QemuCommand(kernel, initrd, image, rw, 256, 1, QemuCommand.kvmUsable(),
                QemuCommand.hostTscKhz(), List.of());
        List<String> argv = new ArrayList<>(qemu.argv());
        int append = argv.indexOf("-append") + 1;
        argv.set(append, argv.get(append) + " kiln.disks=fs");
        // no serials, and the writable disk first: only the filesystems can tell them apart
        int imageDrive = argv.indexOf("-drive");
        List<String> imageArgs = new ArrayList<>(argv.subList(imageDrive, imageDrive + 4));
        argv.subList(imageDrive, imageDrive + 4).clear();
        argv.addAll(argv.indexOf("-drive") + 4, imageArgs);
        argv.replaceAll(a -> a.replace(",serial=kiln-image", "").replace(",serial=kiln-rw", ""));
        assertThat(String.join(" ", argv)).doesNotContain("serial=kiln");
        assertThat(argv.get(argv.indexOf("-drive") + 1)).startsWith("id=rw,");

        List<String> cmd = new ArrayList<>(List.of(ShimBinary.locate().toString(), "--relay-vm", "--dir",
                vm.toString(), "--spec", vm.resolve("start.spec").toString(), "--hello-timeout", "60"));
        cmd.addAll(qemu.relayOptions()); // the disks as descriptors, the console into boot.log
        cmd.add("--");
        cmd.addAll(argv);
        Process relay = new ProcessBuilder(cmd).redirectOutput(dir.resolve("stdout").toFile())
                .redirectError(dir.resolve("stderr").toFile()).start();
        try {
            assertThat(relay.waitFor(120, TimeUnit.SECONDS)).isTrue();
        } finally {
            relay.destroyForcibly();
        }
        String out = Files.readString(dir.resolve("stdout"));
        System.out.println("guest with kiln.disks=fs: " + out + Files.readString(dir.resolve("stderr")));
        assertThat(relay.exitValue()).as(Files.readString(dir.resolve("stderr"))).isZero();
        assertThat(out).isEqualTo("hi\n"); // busybox ran from the erofs image
        // and the overlay's upper layer is on the ext4 disk (vda here), where the workload's file landed
        assertThat(Command.run("debugfs", "-R", "cat /upper/marker", rw.toString())).contains("written");
    }
}
