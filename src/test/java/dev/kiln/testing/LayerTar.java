package dev.kiln.testing;

import com.github.luben.zstd.ZstdOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.attribute.FileTime;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.apache.commons.compress.compressors.gzip.GzipCompressorOutputStream;

/**
 * A hand-written layer tar (commons-compress, PAX headers, owner 0:0, mtime 0) for entries no tool produces on
 * demand, such as opaque whiteouts. Entry names are relative ({@code "dir/file"}); directories end with "/".
 */
public final class LayerTar {
    public static final String GZIP_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";
    public static final String ZSTD_TYPE = "application/vnd.oci.image.layer.v1.tar+zstd";

    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final TarArchiveOutputStream tar = new TarArchiveOutputStream(bytes);
    private boolean finished;

    public LayerTar() {
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
    }

    public LayerTar dir(String name, int mode) {
        return add(entry(name.endsWith("/") ? name : name + "/", TarConstants.LF_DIR, mode), new byte[0]);
    }

    public LayerTar file(String name, String content, int mode) {
        byte[] data = content.getBytes(StandardCharsets.UTF_8);
        TarArchiveEntry e = entry(name, TarConstants.LF_NORMAL, mode);
        e.setSize(data.length);
        return add(e, data);
    }

    public LayerTar symlink(String name, String target) {
        TarArchiveEntry e = entry(name, TarConstants.LF_SYMLINK, 0777);
        e.setLinkName(target);
        return add(e, new byte[0]);
    }

    /** A hardlink to an earlier entry, {@code target} as a path relative to the layer root. */
    public LayerTar hardlink(String name, String target) {
        TarArchiveEntry e = entry(name, TarConstants.LF_LINK, 0644);
        e.setLinkName(target);
        return add(e, new byte[0]);
    }

    /** Deletes {@code path} of lower layers: an empty {@code .wh.NAME} next to it. */
    public LayerTar whiteout(String path) {
        int slash = path.lastIndexOf('/');
        return file(path.substring(0, slash + 1) + ".wh." + path.substring(slash + 1), "", 0644);
    }

    /** Hides everything lower layers have under {@code dir}: an empty {@code dir/.wh..wh..opq}. */
    public LayerTar opaque(String dir) {
        return file((dir.endsWith("/") ? dir : dir + "/") + ".wh..wh..opq", "", 0644);
    }

    /** The uncompressed tar; no entries can be added afterwards. */
    public byte[] tar() {
        try {
            if (!finished) tar.close();
            finished = true;
            return bytes.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** sha256 of the uncompressed tar, the layer's diff_id. */
    public String diffId() {
        return OciLayout.sha256(tar());
    }

    public byte[] gzip() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (OutputStream gz = new GzipCompressorOutputStream(out)) {
            gz.write(tar());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    public byte[] zstd() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (OutputStream zs = new ZstdOutputStream(out)) {
            zs.write(tar());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    private static TarArchiveEntry entry(String name, byte type, int mode) {
        TarArchiveEntry e = new TarArchiveEntry(name, type);
        e.setMode(mode);
        e.setIds(0, 0);
        e.setModTime(FileTime.fromMillis(0));
        return e;
    }

    private LayerTar add(TarArchiveEntry e, byte[] data) {
        if (finished) throw new IllegalStateException("tar already finished");
        try {
            tar.putArchiveEntry(e);
            tar.write(data);
            tar.closeArchiveEntry();
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        return this;
    }
}
