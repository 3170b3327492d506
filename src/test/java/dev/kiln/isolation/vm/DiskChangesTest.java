package dev.kiln.isolation.vm;

import dev.kiln.rootfs.TreeArchive;
import dev.kiln.testing.Command;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What a stopped VM changed, as {@code commit} and a vm build's RUN step read it: the guest wrote the disk, so its
 * overlay's {@code upper} may be a link to a host directory (the sixth review's F0: the host's files became the layer).
 */
class DiskChangesTest {
    @TempDir
    Path dir;

    @Test
    void theGuestsUpperDirectoryIsTheLayer() throws IOException {
        Path seed = Files.createDirectories(dir.resolve("seed/upper"));
        Files.writeString(seed.resolve("made-in-the-guest"), "x");
        assertThat(layerOf(dir.resolve("seed"))).containsExactly("made-in-the-guest");
    }

    @Test
    void anUpperThatLinksToAHostDirectoryGivesNoChangesNotTheHostsFiles() throws IOException {
        Path host = Files.createDirectories(dir.resolve("host"));
        Files.writeString(host.resolve("secret"), "host-only");
        Files.createDirectories(dir.resolve("seed"));
        Files.createSymbolicLink(dir.resolve("seed/upper"), host.toAbsolutePath()); // what a guest can do to its disk
        Files.createDirectories(dir.resolve("seed/lost+found"));
        assertThat(layerOf(dir.resolve("seed"))).isEmpty();
    }

    /** The names in the layer read from an ext4 disk made of {@code seed}, as a stopped VM's writable disk. */
    private List<String> layerOf(Path seed) {
        Command.require("mkfs.ext4", "e2fsprogs");
        Command.require("fuse2fs", "fuse2fs");
        Path sandbox = dir.resolve("sandbox");
        try {
            Files.createDirectories(sandbox);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Path disk = sandbox.resolve("disk.ext4");
        Command.run("truncate", "-s", "64M", disk.toString());
        Command.run("mkfs.ext4", "-q", "-F", "-d", seed.toString(), disk.toString());
        byte[] layer = DiskChanges.read(sandbox, upper -> {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            try {
                TreeArchive.layer(upper, out);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return out.toByteArray();
        });
        List<String> names = new ArrayList<>();
        try (TarArchiveInputStream tar = new TarArchiveInputStream(new ByteArrayInputStream(layer))) {
            for (TarArchiveEntry e = tar.getNextEntry(); e != null; e = tar.getNextEntry()) {
                names.add(e.getName().replaceFirst("^\\./", "").replaceFirst("/$", ""));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        names.remove("");
        return names;
    }
}
