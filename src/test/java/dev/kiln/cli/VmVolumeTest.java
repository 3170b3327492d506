package dev.kiln.cli;

import dev.kiln.testing.Command;
import dev.kiln.testing.VmTests;
import dev.kiln.testing.WrittenLine;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Bind mounts, volumes and tmpfs in the vm isolation (virtio-fs shares served by virtiofsd to the jailed QEMU): few
 * boots, each checking several things, since a boot costs seconds under TCG. Firecracker's refusal needs none.
 */
@Tag("slow")
class VmVolumeTest {

    @TempDir
    static Path root;
    @TempDir
    Path host;
    static KilnRun kiln;
    static final String IMAGE = "kiln-test/busybox-vmvol:1";

    @BeforeAll
    static void image() throws Exception {
        VmTests.require();
        kiln = new KilnRun(root);
        kiln.importBusybox(IMAGE, Map.of("srv/seed/hello.txt", "seeded\n"));
    }

    @AfterAll
    static void stop() {
        if (kiln != null) {
            kiln.removeSandboxes();
            kiln.kiln("volume", "prune", "-a");
            kiln.close();
        }
    }

    /**
     * One VM: a bind mount written both ways while it runs (host changes seen live: cache=none), a read-only bind
     * that refuses writes even after the guest remounts it read-write (virtiofsd's view is read-only on the host
     * side), a named volume with the image's content copied in, and a tmpfs of the size asked. A second VM sees what
     * the first wrote to the volume; what a {@code --rm} VM writes to a shared directory is on the host after it.
     */
    @Test
    void sharesVolumesAndTmpfsInAVm() throws Exception {
        Files.writeString(host.resolve("config"), "setting=1\n");
        Path live = Files.createDirectories(host.resolve("live"));
        kiln.ok("run", "-d", "--name", "vmvol", "--isolation", "vm", "-v", live + ":/work",
                "-v", host.resolve("config") .getParent() + ":/etc/app:ro", "-v", "vmdata:/srv/seed",
                "--tmpfs", "/scratch:size=1m", IMAGE, "sh", "-c",
                "cat /etc/app/config; echo no > /etc/app/written || echo ro-refused; "
                        + "mount -o remount,rw /etc/app; echo no > /etc/app/written2 || echo ro-still-refused; "
                        + "cat /srv/seed/hello.txt; echo kept > /srv/seed/mine; "
                        + "busybox dd if=/dev/zero of=/scratch/big bs=1024 count=2048 2>/dev/null || echo tmpfs-full; "
                        + "echo from-guest > /work/out; "
                        + "while [ ! -f /work/go ]; do sleep 0.2; done; cat /work/go; sleep 1000");
        await(() -> WrittenLine.in(live.resolve("out")), Duration.ofSeconds(120));
        assertThat(Files.readString(live.resolve("out"))).isEqualTo("from-guest\n");
        Files.writeString(live.resolve("go"), "from-host\n");
        await(() -> kiln.ok("logs", "vmvol").out().contains("from-host"), Duration.ofSeconds(30));
        assertThat(kiln.ok("logs", "vmvol").out().lines().toList()).containsExactly("setting=1", "ro-refused",
                "ro-still-refused", "seeded", "tmpfs-full", "from-host");
        assertThat(host.resolve("written")).doesNotExist();
        assertThat(host.resolve("written2")).doesNotExist();
        kiln.ok("rm", "-f", "vmvol");
        assertThat(virtiofsdOf(live)).as("virtiofsd left after rm").isFalse();

        // a --rm VM powers off without syncing its own disk (docs/vm.md), but not what it wrote to a share
        assertThat(kiln.ok("run", "--rm", "--isolation", "vm", "-v", "vmdata:/data", "-v", live + ":/work", IMAGE, "sh",
                "-c", "cat /data/mine; busybox head -c 1048576 /dev/zero > /work/from-rm").out()).isEqualTo("kept\n");
        assertThat(Files.size(live.resolve("from-rm"))).as("what a --rm VM wrote to a shared directory")
                .isEqualTo(1 << 20);
        kiln.ok("volume", "rm", "vmdata");
    }

    @Test
    void aFileIsNotSharedWithAVm() throws Exception {
        Path file = Files.writeString(host.resolve("app.conf"), "x\n");
        KilnRun.Result r = kiln.kiln("create", "--name", "vmfile", "--isolation", "vm", "-v", file + ":/etc/app.conf",
                IMAGE, "true");
        assertThat(r.exitCode()).isEqualTo(125);
        assertThat(r.errLines()).singleElement().asString().contains("shares directories, not files");
        assertThat(kiln.ok("ps", "-a", "-q").out()).isEmpty();
    }

    @Test
    void firecrackerRefusesSharedDirectoriesInOneLine() {
        Command.require("firecracker", "firecracker (no Debian package: a release binary)");
        KilnRun.Result r = kiln.kiln("run", "--rm", "--isolation", "vm", "--runtime", "firecracker", "-v",
                host + ":/x", IMAGE, "true");
        assertThat(r.exitCode()).isEqualTo(125);
        assertThat(r.errLines()).singleElement().asString().contains("Firecracker has no shared filesystem");
    }

    private static boolean virtiofsdOf(Path source) {
        return ProcessHandle.allProcesses().anyMatch(p -> p.info().commandLine()
                .map(c -> c.contains("virtiofsd") && c.contains(source.toString())).orElse(false));
    }

    private static void await(java.util.function.BooleanSupplier condition, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out; logs: " + kiln.kiln("logs", "vmvol").out()
                        + kiln.kiln("logs", "vmvol").err());
            }
            Thread.sleep(200);
        }
    }
}
