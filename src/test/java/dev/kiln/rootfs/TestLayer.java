package dev.kiln.rootfs;

import com.github.luben.zstd.ZstdOutputStream;
import dev.kiln.image.Digest;
import dev.kiln.image.MediaType.Compression;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.apache.commons.compress.compressors.gzip.GzipCompressorOutputStream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;

/** A layer tar built entry by entry in a test, names taken literally (absolute and {@code ..} ones too). */
final class TestLayer {
    static final FileTime MTIME = FileTime.from(Instant.parse("2020-01-02T03:04:05Z"));

    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final TarArchiveOutputStream tar = new TarArchiveOutputStream(bytes);

    TestLayer() {
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
    }

    TestLayer dir(String name, int mode) {
        return add(entry(name, TarConstants.LF_DIR, mode), null);
    }

    TestLayer file(String name, String content) {
        return file(name, content, 0644, 0, 0);
    }

    TestLayer file(String name, String content, int mode, int uid, int gid) {
        TarArchiveEntry e = entry(name, TarConstants.LF_NORMAL, mode);
        e.setUserId(uid);
        e.setGroupId(gid);
        return add(e, content.getBytes(StandardCharsets.UTF_8));
    }

    TestLayer symlink(String name, String target) {
        TarArchiveEntry e = entry(name, TarConstants.LF_SYMLINK, 0777);
        e.setLinkName(target);
        return add(e, null);
    }

    TestLayer hardlink(String name, String target) {
        TarArchiveEntry e = entry(name, TarConstants.LF_LINK, 0644);
        e.setLinkName(target);
        return add(e, null);
    }

    TestLayer node(String name, byte type, int major, int minor) {
        TarArchiveEntry e = entry(name, type, 0640);
        e.setDevMajor(major);
        e.setDevMinor(minor);
        return add(e, null);
    }

    /** Adds an entry the caller configured (xattrs, times); content may be null. */
    TestLayer add(TarArchiveEntry e, byte[] content) {
        try {
            if (content != null) {
                e.setSize(content.length);
            }
            tar.putArchiveEntry(e);
            if (content != null) {
                tar.write(content);
            }
            tar.closeArchiveEntry();
            return this;
        } catch (IOException x) {
            throw new UncheckedIOException(x);
        }
    }

    static TarArchiveEntry entry(String name, byte type, int mode) {
        TarArchiveEntry e = new TarArchiveEntry(name, type, true);
        e.setMode(mode);
        e.setLastModifiedTime(MTIME);
        return e;
    }

    byte[] tar() {
        try {
            tar.finish();
            return bytes.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Writes the blob compressed under {@code dir} and returns it. */
    Blob write(Path dir, Compression compression) throws IOException {
        byte[] raw = tar();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (OutputStream z = switch (compression) {
            case NONE -> out;
            case GZIP -> new GzipCompressorOutputStream(out);
            case ZSTD -> new ZstdOutputStream(out);
        }) {
            z.write(raw);
        }
        byte[] blob = out.toByteArray();
        Digest digest = Digest.of(blob);
        Path path = Files.write(Files.createDirectories(dir).resolve(digest.hex()), blob);
        return new Blob(path, compression, digest);
    }

    record Blob(Path path, Compression compression, Digest digest) {
        LayerApplier.Stats applyTo(Path root, LayerApplier.Limits limits) {
            return new LayerApplier(limits).apply(path, compression, digest, root);
        }

        LayerApplier.Stats applyTo(Path root) {
            return applyTo(root, LayerApplier.Limits.defaults());
        }
    }
}
