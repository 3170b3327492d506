package dev.kiln.rootfs;

import dev.kiln.KilnException;
import dev.kiln.image.MediaType.Compression;
import dev.kiln.testing.FileTree;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.Arrays;

import static dev.kiln.testing.FileTree.Type.DIR;
import static dev.kiln.testing.FileTree.Type.FIFO;
import static dev.kiln.testing.FileTree.Type.FILE;
import static dev.kiln.testing.FileTree.Type.SYMLINK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class LayerApplierTest {
    @TempDir
    Path tmp;

    Path root() {
        return tmp.resolve("root");
    }

    @Test
    void appliesFilesDirsLinksModesOwnersAndTimes() throws IOException {
        TarArchiveEntry tagged = TestLayer.entry("etc/tagged", TarConstants.LF_NORMAL, 0600);
        tagged.addPaxHeader("SCHILY.xattr.user.kiln", "yes");
        TestLayer layer = new TestLayer()
                .dir("bin/", 0755)
                .file("bin/su", "su", 04755, 0, 0)
                .file("bin/wall", "wall", 02755, 0, 5)
                .dir("tmp/", 01777)
                .dir("etc/", 0755)
                .file("etc/owned", "x", 0640, 1000, 2000)
                .symlink("etc/abs", "/usr/lib/os-release")
                .symlink("etc/rel", "owned")
                .hardlink("etc/same", "etc/owned")
                .node("run/fifo", TarConstants.LF_FIFO, 0, 0)
                .add(tagged, "t".getBytes(StandardCharsets.UTF_8));

        LayerApplier.Stats stats = layer.write(tmp.resolve("blobs"), Compression.GZIP).applyTo(root());

        FileTree tree = FileTree.withMtimes(root());
        assertThat(stats.entries()).isEqualTo(11);
        assertThat(tree.get("bin/su")).extracting(FileTree.Entry::type, FileTree.Entry::mode).containsExactly(FILE, 04755);
        assertThat(tree.get("bin/wall")).extracting(FileTree.Entry::mode, FileTree.Entry::gid).containsExactly(02755, 5);
        assertThat(tree.get("tmp").mode()).isEqualTo(01777);
        assertThat(tree.get("etc/owned")).extracting(FileTree.Entry::mode, FileTree.Entry::uid, FileTree.Entry::gid,
                FileTree.Entry::size).containsExactly(0640, 1000, 2000, 1L);
        assertThat(tree.get("etc/abs")).extracting(FileTree.Entry::type, FileTree.Entry::linkTarget)
                .containsExactly(SYMLINK, "/usr/lib/os-release");
        assertThat(tree.get("etc/rel").linkTarget()).isEqualTo("owned");
        assertThat(tree.get("etc/same").hardlinkOf()).isEqualTo("etc/owned");
        assertThat(tree.get("run/fifo")).extracting(FileTree.Entry::type, FileTree.Entry::mode).containsExactly(FIFO, 0640);
        assertThat(tree.get("run").type()).isEqualTo(DIR); // implicit parent
        for (String path : new String[] {"bin", "etc", "bin/su", "etc/abs", "run/fifo"}) {
            assertThat(tree.get(path).mtime()).as(path).isEqualTo(TestLayer.MTIME);
        }
        var xattrs = Files.getFileAttributeView(root().resolve("etc/tagged"), UserDefinedFileAttributeView.class);
        ByteBuffer value = ByteBuffer.allocate(16);
        xattrs.read("kiln", value);
        assertThat(new String(value.array(), 0, value.position(), StandardCharsets.UTF_8)).isEqualTo("yes");
    }

    @Test
    void whiteoutsAndOpaqueDirectoriesHideOnlyLowerLayers() throws IOException {
        new TestLayer()
                .file("a/x", "x").file("a/y", "y").file("b/z", "z")
                .file("c/old", "old").file("c/sub/old", "old").file("c/sub/kept-by-upper", "lower")
                .write(tmp.resolve("blobs"), Compression.GZIP).applyTo(root());
        new TestLayer()
                .file("a/.wh.x", "")
                .file(".wh.b", "")
                .file("c/new", "new")                 // before the marker: this layer's, so kept
                .file("c/sub/kept-by-upper", "upper")
                .file("c/.wh..wh..opq", "")
                .file("c/after", "after")
                .file("c/.wh.after", "")              // a whiteout never hides its own layer
                .file("d/.wh..wh..opq", "")           // opaque dir that does not exist yet
                .write(tmp.resolve("blobs"), Compression.NONE).applyTo(root());

        assertThat(FileTree.of(root()).entries().keySet()).containsExactly(
                ".", "a", "a/y", "c", "c/after", "c/new", "c/sub", "c/sub/kept-by-upper");
        assertThat(root().resolve("c/sub/kept-by-upper")).hasContent("upper");
    }

    @Test
    void nonDirectoriesReplaceAnythingAndDirectoriesMerge() throws IOException {
        new TestLayer()
                .file("was-dir/child", "c")
                .file("was-file", "f")
                .symlink("was-link", "was-file")
                .file("merged/child", "c")
                .write(tmp.resolve("blobs"), Compression.GZIP).applyTo(root());
        new TestLayer()
                .file("was-dir", "now a file")
                .dir("was-file/", 0755)
                .dir("was-link/", 0755)
                .dir("merged/", 0700)
                .write(tmp.resolve("blobs"), Compression.GZIP).applyTo(root());

        FileTree tree = FileTree.of(root());
        assertThat(tree.get("was-dir").type()).isEqualTo(FILE);
        assertThat(tree.contains("was-dir/child")).isFalse();
        assertThat(tree.get("was-file").type()).isEqualTo(DIR);
        assertThat(tree.get("was-link").type()).isEqualTo(DIR);
        assertThat(tree.get("merged").mode()).isEqualTo(0700);
        assertThat(tree.contains("merged/child")).isTrue();
    }

    @Test
    void zstdAndPlainLayersGiveTheSameTreeAsGzip() throws IOException {
        FileTree gzip = null;
        for (Compression compression : Compression.values()) {
            Path root = tmp.resolve("root-" + compression);
            new TestLayer().file("a/b", "content", 0755, 1, 2).symlink("l", "a/b")
                    .write(tmp.resolve("blobs-" + compression), compression).applyTo(root);
            FileTree tree = FileTree.of(root);
            assertThat(Files.getLastModifiedTime(root.resolve("a/b"))).isEqualTo(TestLayer.MTIME);
            if (gzip == null) {
                gzip = tree;
            }
            assertThat(tree.diff(gzip)).as(compression.name()).isEmpty();
        }
    }

    @Test
    void deviceNodesAreSkippedUnlessAsked() throws IOException {
        var blob = new TestLayer().node("dev/null", TarConstants.LF_CHR, 1, 3).file("dev/ok", "")
                .write(tmp.resolve("blobs"), Compression.GZIP);
        blob.applyTo(root());
        assertThat(root().resolve("dev/null")).doesNotExist();
        assertThat(root().resolve("dev/ok")).exists();

        Path withDevices = tmp.resolve("with-devices");
        blob.applyTo(withDevices, new LayerApplier.Limits(1 << 20, true));
        Path device = withDevices.resolve("dev/null");
        assertThat((Integer) Files.getAttribute(device, "unix:mode", LinkOption.NOFOLLOW_LINKS) & 0170000)
                .isEqualTo(0020000);
        assertThat((Long) Files.getAttribute(device, "unix:rdev", LinkOption.NOFOLLOW_LINKS)).isEqualTo(0x103L);
    }

    @Test
    void truncatedBlobIsCorrupt() throws IOException {
        var blob = new TestLayer().file("big", "x".repeat(100_000)).write(tmp.resolve("blobs"), Compression.GZIP);
        byte[] bytes = Files.readAllBytes(blob.path());
        Files.write(blob.path(), Arrays.copyOf(bytes, bytes.length / 2));

        assertThatThrownBy(() -> blob.applyTo(root()))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.CORRUPT);
                    assertThat(e.getMessage()).doesNotContain("\n").contains(blob.digest().toString())
                            .contains("truncated or corrupt");
                });
    }

    @Test
    void decompressionBombStopsAtTheLimit() throws IOException {
        var bomb = new TestLayer().file("zeros", "\0".repeat(8 << 20)).write(tmp.resolve("blobs"), Compression.GZIP);
        assertThat(Files.size(bomb.path())).isLessThan(64 << 10);

        assertThatThrownBy(() -> bomb.applyTo(root(), new LayerApplier.Limits(1 << 20, false)))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.CORRUPT);
                    assertThat(e.getMessage()).doesNotContain("\n").contains(bomb.digest().toString())
                            .contains("more than 1048576 bytes uncompressed");
                });
    }
}
