package dev.kiln.cli;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The warm pool's first building block (docs/vm.md, "The warm pool"), behind {@code -Dkiln.vm.late-disks=true}: a VM
 * restored from a snapshot starts on empty placeholders of its disks' sizes, and the relay re-points the drives at the
 * sandbox's disks over QMP (add-fd, blockdev-add, blockdev-reopen) once the state has loaded, before START — through
 * the VMM's jail and seccomp list as they are. The guest then reads the image and writes its own disk. Real QEMU (TCG
 * here), the host's kernel, kiln-init; one template boot and two restores.
 */
@Tag("slow")
class VmLateDisksTest {

    @TempDir
    static Path root;
    static KilnRun kiln;
    static final String IMAGE = "kiln-test/vmlate-busybox:1";

    @BeforeAll
    static void image() throws Exception {
        dev.kiln.testing.VmTests.require();
        System.setProperty("kiln.vm.late-disks", "true"); // read at each VM start by the in-JVM kilnd
        Path config = root.resolve("config.yaml");
        Files.writeString(config, "vm-snapshot: true\n");
        kiln = new KilnRun(root, config);
        kiln.importBusybox(IMAGE, Map.of("marker", "from the image disk\n"));
    }

    @AfterAll
    static void stop() {
        System.clearProperty("kiln.vm.late-disks");
        if (kiln != null) kiln.close();
    }

    @Test
    void aRestoredVmRunsOnTheDisksItWasGivenAfterItsRestore() throws Exception {
        KilnRun.Result r = kiln.kiln("run", "--rm", "--network", "none", "--isolation", "vm", IMAGE, "sh", "-c",
                "cat /marker; echo written > /w; cat /w; exit 7");
        assertThat(r.exitCode()).as(r.err()).isEqualTo(7);
        assertThat(r.out().lines().toList()).containsExactly("from the image disk", "written");

        String id = kiln.ok("run", "-d", "--network", "none", "--isolation", "vm", IMAGE, "sh", "-c",
                "echo from-main > /w; exec busybox sleep 120").out().strip();
        try {
            Path vm = kiln.store().resolve("sandboxes").resolve(id.substring(0, 12)).resolve("vm");
            awaitFile(vm.resolve("timings.json"));
            // exec sees what the main process wrote on the writable disk (once it has), and the image
            List<String> seen = List.of();
            for (int i = 0; i < 60 && !seen.contains("from-main"); i++) {
                if (i > 0) Thread.sleep(500);
                KilnRun.Result e = kiln.kiln("exec", id, "sh", "-c", "cat /w /marker 2>/dev/null");
                assertThat(e.exitCode()).as(e.err() + " / logs: " + kiln.kiln("logs", id) + " / boot: "
                        + kiln.kiln("logs", "--boot", id).out()).isZero();
                seen = e.out().lines().toList();
            }
            assertThat(seen).containsExactly("from-main", "from the image disk");
            String pid = Files.readString(vm.resolve("vmm.pid")).strip();
            String argv = Files.readString(Path.of("/proc", pid, "cmdline")).replace('\0', ' ');
            assertThat(argv).contains("-incoming defer", "node-name=image-fmt", "node-name=rw-fmt");
            // QEMU started on placeholders (descriptors 3-5), then got the disks over its monitor
            List<String> files = new ArrayList<>();
            try (Stream<Path> fds = Files.list(Path.of("/proc", pid, "fd"))) {
                for (Path fd : fds.toList()) {
                    try {
                        files.add(fd.getFileName() + " " + Files.readSymbolicLink(fd));
                    } catch (java.io.IOException gone) {
                        // closed meanwhile
                    }
                }
            }
            assertThat(files).as(files.toString())
                    .noneMatch(f -> f.matches("[345] .*(erofs|disk\\.ext4)"))
                    .anyMatch(f -> f.endsWith(".erofs"))
                    .anyMatch(f -> f.endsWith("/disk.ext4"));
            assertThat(Files.readString(vm.resolve("timings.json"))).containsPattern("\"repointedMs\":[0-9]+");
        } finally {
            kiln.kiln("rm", "-f", id);
        }
    }

    private static void awaitFile(Path file) throws InterruptedException {
        for (int i = 0; i < 600 && !Files.exists(file); i++) Thread.sleep(100);
        assertThat(file).exists();
    }
}
