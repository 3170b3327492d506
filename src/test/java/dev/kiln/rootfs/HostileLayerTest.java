package dev.kiln.rootfs;

import dev.kiln.KilnException;
import dev.kiln.image.Digest;
import dev.kiln.image.MediaType.Compression;
import dev.kiln.testing.FileTree;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.List;

import static dev.kiln.testing.FileTree.Type.DIR;
import static dev.kiln.testing.FileTree.Type.FILE;
import static dev.kiln.testing.FileTree.Type.SYMLINK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Layers written by an attacker. A sentinel directory sits next to the root; whatever the layer does, nothing outside
 * the root may change. Absolute targets name the sentinel's real host path, so a bug cannot harm the host.
 */
class HostileLayerTest {
    @TempDir
    Path tmp;
    Path root;
    Path sentinel;
    String abs; // the sentinel's absolute host path
    FileTree before;

    @BeforeEach
    void sentinel() throws IOException {
        root = Files.createDirectory(tmp.resolve("root"));
        sentinel = Files.createDirectory(tmp.resolve("sentinel"));
        abs = sentinel.toAbsolutePath().toString();
        Files.writeString(sentinel.resolve("secret"), "secret");
        Files.createDirectory(sentinel.resolve("sub"));
        Files.setLastModifiedTime(sentinel.resolve("sub"), FileTime.from(Instant.parse("2001-01-01T00:00:00Z")));
        Files.setLastModifiedTime(sentinel, FileTime.from(Instant.parse("2001-01-01T00:00:00Z")));
        before = FileTree.withMtimes(sentinel);
    }

    @AfterEach
    void nothingOutsideTheRootChanged() throws IOException {
        assertThat(FileTree.withMtimes(sentinel).diff(before)).isEmpty();
        assertThat(Files.getAttribute(sentinel.resolve("secret"), "unix:nlink")).isEqualTo(1);
        try (var children = Files.list(tmp)) {
            assertThat(children.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("root", "sentinel", "blobs");
        }
    }

    void apply(TestLayer layer) throws IOException {
        layer.write(tmp.resolve("blobs"), Compression.GZIP).applyTo(root);
    }

    void assertRejected(TestLayer layer, String entry, String reason) throws IOException {
        var blob = layer.write(tmp.resolve("blobs"), Compression.GZIP);
        assertThatThrownBy(() -> blob.applyTo(root)).isInstanceOfSatisfying(KilnException.class, e -> {
            assertThat(e.kind()).isEqualTo(KilnException.Kind.CORRUPT);
            assertThat(e.getMessage()).doesNotContain("\n").contains("layer " + blob.digest())
                    .contains("entry " + entry).contains(reason);
        });
    }

    @Test
    void dotDotNamesAreRejected() throws IOException {
        assertRejected(new TestLayer().file("../sentinel/secret", "pwned"), "\"../sentinel/secret\"", "escapes the root");
        assertRejected(new TestLayer().file("a/../../sentinel/new", "pwned"), "\"a/../../sentinel/new\"", "escapes");
        assertRejected(new TestLayer().dir("./../sentinel/sub/", 0777), "\"./../sentinel/sub/\"", "escapes");
        assertRejected(new TestLayer().file("../sentinel/.wh.secret", ""), "\"../sentinel/.wh.secret\"", "escapes");
    }

    @Test
    void aNewlineInANameStaysOnOneLine() throws IOException {
        assertRejected(new TestLayer().file("../x\ny", ""), "\"../x\\x0ay\"", "escapes");
    }

    @Test
    void aNameNoLinuxFilesystemHoldsIsRejectedNotAWriteFailure() throws IOException {
        // issue 11: a 300-byte name failed as "cannot write … File name too long (check free space)", a 500
        assertRejected(new TestLayer().file("a".repeat(300), "x"), "\"" + "a".repeat(200) + "…\"",
                "longer than 255 bytes");
        assertRejected(new TestLayer().file(("d".repeat(200) + "/").repeat(21) + "f", "x"), "\"ddd",
                "longer than a Linux path can be");
        apply(new TestLayer().file("n".repeat(255), "fits")); // NAME_MAX itself is fine
        assertThat(root.resolve("n".repeat(255))).hasContent("fits");
    }

    @Test
    void bytesThatAreNoTarAreRejectedNotUnpacked() throws IOException {
        // issue 11: a \x00\xff pattern unpacked as a mode-000 directory named "?"
        byte[] junk = new byte[8192];
        for (int i = 1; i < junk.length; i += 2) {
            junk[i] = (byte) 0xff;
        }
        for (byte[] bytes : List.of(junk, "hello\n".getBytes(java.nio.charset.StandardCharsets.UTF_8))) {
            Digest digest = Digest.of(bytes);
            Path blob = Files.write(Files.createDirectories(tmp.resolve("blobs")).resolve(digest.hex()), bytes);
            TestLayer.Blob layer = new TestLayer.Blob(blob, Compression.NONE, digest);
            assertThatThrownBy(() -> layer.applyTo(root)).isInstanceOfSatisfying(KilnException.class, e -> {
                assertThat(e.kind()).isEqualTo(KilnException.Kind.CORRUPT);
                assertThat(e.getMessage()).contains("cannot read the blob")
                        .containsAnyOf("checksum is wrong", "less than one tar header").doesNotContain("\n");
            });
        }
        try (var children = Files.list(root)) {
            assertThat(children).as("nothing unpacked").isEmpty();
        }
    }

    @Test
    void absoluteNamesAreRelativeToTheRoot() throws IOException {
        apply(new TestLayer().file(abs + "/secret", "pwned").file("/etc/hostname", "box"));
        assertThat(root.resolve(abs.substring(1) + "/secret")).hasContent("pwned");
        assertThat(root.resolve("etc/hostname")).hasContent("box");
    }

    @Test
    void writingThroughAnAbsoluteSymlinkStaysInTheRoot() throws IOException {
        apply(new TestLayer().symlink("evil", abs).file("evil/secret", "pwned").dir("evil/sub/", 0777));
        assertThat(root.resolve("evil")).isSymbolicLink();
        assertThat(root.resolve(abs.substring(1) + "/secret")).hasContent("pwned");
    }

    @Test
    void writingThroughARelativeSymlinkStaysInTheRoot() throws IOException {
        apply(new TestLayer().symlink("evil", "../sentinel").file("evil/secret", "pwned"));
        assertThat(root.resolve("sentinel/secret")).hasContent("pwned");
    }

    @Test
    void symlinkChainsAreResolvedInTheRoot() throws IOException {
        apply(new TestLayer().symlink("a", "b").symlink("b", "d/../../../sentinel").dir("d/", 0755)
                .file("a/secret", "pwned"));
        assertThat(root.resolve("sentinel/secret")).hasContent("pwned");
    }

    @Test
    void symlinkLoopsAreRejected() throws IOException {
        assertRejected(new TestLayer().symlink("a", "b").symlink("b", "a").file("a/x", ""), "\"a/x\"",
                "too many levels of symbolic links");
    }

    @Test
    void hardlinksOutsideTheRootAreRejected() throws IOException {
        assertRejected(new TestLayer().hardlink("h", "../sentinel/secret"), "\"h\"", "outside the root");
        assertRejected(new TestLayer().hardlink("h", abs + "/secret"), "\"h\"", "not in the root");
        assertRejected(new TestLayer().symlink("s", abs).hardlink("h", "s/secret"), "\"h\"", "not in the root");
        assertRejected(new TestLayer().symlink("s", "../sentinel").hardlink("h", "s/secret"), "\"h\"", "not in the root");
    }

    @Test
    void hardlinkToAnEscapingSymlinkLinksTheSymlinkItself() throws IOException {
        apply(new TestLayer().symlink("s", "../sentinel/secret").hardlink("h", "s").file("h", "replaced"));
        assertThat(root.resolve("s")).isSymbolicLink();
        assertThat(root.resolve("h")).isRegularFile().hasContent("replaced");
    }

    @Test
    void aSymlinkReplacedByADirectoryIsARealDirectory() throws IOException {
        apply(new TestLayer().symlink("d", abs).dir("d/", 0755).file("d/secret", "pwned"));
        assertThat(FileTree.of(root).get("d").type()).isEqualTo(DIR);
        assertThat(root.resolve("d/secret")).hasContent("pwned");
    }

    @Test
    void aDirectoryReplacedByASymlinkKeepsNoPendingModeChange() throws IOException {
        apply(new TestLayer().dir("d/", 0777).dir("d/sub/", 0777).symlink("d", "../sentinel"));
        assertThat(root.resolve("d")).isSymbolicLink();
    }

    @Test
    void aFileOverAnEscapingSymlinkReplacesTheLink() throws IOException {
        apply(new TestLayer().symlink("secret", "../sentinel/secret").symlink("abs", abs + "/secret"));
        apply(new TestLayer().file("secret", "pwned", 0666, 0, 0).file("abs", "pwned"));
        FileTree tree = FileTree.of(root);
        assertThat(tree.get("secret").type()).isEqualTo(FILE);
        assertThat(tree.get("abs").type()).isEqualTo(FILE);
        assertThat(root.resolve("secret")).hasContent("pwned");
    }

    @Test
    void whiteoutsThroughSymlinksStayInTheRoot() throws IOException {
        apply(new TestLayer().symlink("s", "../sentinel").symlink("t", abs));
        apply(new TestLayer().file("s/.wh.secret", "").file("t/.wh.sub", "").file("t/.wh..wh..opq", "")
                .file("s/.wh..wh..opq", ""));
        assertThat(FileTree.of(root).get("s").type()).isEqualTo(SYMLINK);
        assertRejected(new TestLayer().file(".wh...", ""), "\".wh...\"", "whiteout");
    }

    @Test
    void aWhiteoutOfAnEscapingSymlinkRemovesOnlyTheLink() throws IOException {
        apply(new TestLayer().symlink("s", "../sentinel"));
        apply(new TestLayer().file(".wh.s", ""));
        assertThat(Files.exists(root.resolve("s"), LinkOption.NOFOLLOW_LINKS)).isFalse();
    }
}
