package dev.kiln.isolation.vm;

import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.Resources;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.testing.BusyboxRootfs;
import dev.kiln.testing.Command;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What lets a VM restored from a QEMU snapshot keep the disks its template bound (docs/vm.md, "Snapshot start"): the
 * image disk has the size of the template's image placeholder (a multiple of {@link ImageDisk#SPAN}: a sparse tail
 * that erofs never reads; one of an older kiln is padded when found), and START tells kiln-init both disks' sizes.
 */
class ImageDiskSpanTest {

    @TempDir
    Path dir;

    @Test
    void anImageDiskIsPaddedSparselyToItsSpanAndAnOlderOneWhenFound() throws Exception {
        Command.require("mkfs.erofs", "erofs-utils");
        Path rootfs = BusyboxRootfs.create(dir.resolve("rootfs"));
        Path disk = ImageDisk.ensure(rootfs, dir.resolve("disks"));
        assertThat(Files.size(disk)).isEqualTo(ImageDisk.SPAN);
        assertThat(allocated(disk)).as("sparse: the filesystem's blocks only").isLessThan(ImageDisk.SPAN / 64);
        // the filesystem is intact: erofs's own check reads it whole
        Command.run("fsck.erofs", disk.toString());

        // an image disk of an older kiln (the filesystem's own size) is padded when found, not rebuilt
        long fs = 1L << 20;
        try (RandomAccessFile f = new RandomAccessFile(disk.toFile(), "rw")) {
            f.setLength(fs);
        }
        byte[] head = readHead(disk);
        assertThat(ImageDisk.ensure(rootfs, dir.resolve("disks"))).isEqualTo(disk);
        assertThat(Files.size(disk)).isEqualTo(ImageDisk.SPAN);
        assertThat(readHead(disk)).isEqualTo(head);
    }

    @Test
    void startTellsTheDisksSizesWhenGiven() {
        SandboxSpec spec = new SandboxSpec("sizes", "sizes", "sizes", new ProcessSpec(List.of("true"), List.of(),
                "/", 0, 0, List.of(), false, false), dir, false, Resources.UNLIMITED, Map.of(), List.of(), dir);
        String with = new String(GuestSpec.start(spec, null, ImageDisk.SPAN, 2L << 30), StandardCharsets.UTF_8);
        assertThat(List.of(with.split("\0"))).contains("image-bytes=" + ImageDisk.SPAN, "rw-bytes=" + (2L << 30));
        String without = new String(GuestSpec.start(spec, null, -1, -1), StandardCharsets.UTF_8);
        assertThat(without).doesNotContain("image-bytes=", "rw-bytes=");
    }

    private static long allocated(Path file) throws Exception {
        return Long.parseLong(Command.run("stat", "-c", "%b", file.toString()).strip()) * 512;
    }

    private static byte[] readHead(Path file) throws Exception {
        try (var in = Files.newInputStream(file)) {
            return in.readNBytes(1 << 20);
        }
    }
}
