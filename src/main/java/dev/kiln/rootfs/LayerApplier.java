package dev.kiln.rootfs;

import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import dev.kiln.KilnException;
import dev.kiln.image.Digest;
import dev.kiln.image.MediaType;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

import java.io.BufferedInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Applies one OCI/Docker layer blob (a tar, plain, gzip or zstd) onto a root directory with the OCI changeset rules:
 * whiteouts, opaque directories, type replacement, owners, modes (with setuid/setgid/sticky) and times.
 *
 * <p>The layer is untrusted. Nothing outside the root is created, changed or followed: names with {@code ..} that
 * leave the root and hard links to outside it are rejected; a leading {@code /} means "from the root", as in Docker;
 * every parent directory is resolved inside the root (an absolute symlink target starts at the root, {@code ..} stops
 * at it, like openat2 RESOLVE_IN_ROOT), and the last component is never followed: an old entry is removed and the new
 * one created with O_EXCL. Symlinks themselves may point anywhere, as images need.
 *
 * <p>Choices: device nodes are skipped unless {@link Limits#createDevices()} and running as root, because rootless
 * runtimes, gVisor and our VMs mount their own /dev anyway. FIFOs are created. Only {@code user.*} xattrs are
 * applied (from PAX {@code SCHILY.xattr.*}); {@code security.*} (file capabilities), {@code trusted.*} and ACLs are
 * skipped, as commons-compress decodes values as text and Java can only write the user namespace.
 *
 * <p>On any error the root is left half-written: the caller deletes it. Instances are immutable and may apply layers
 * to different roots concurrently; one root takes one layer at a time.
 */
public final class LayerApplier {

    /** {@code maxUncompressedBytes} bounds the tar stream (a decompression-bomb guard). */
    public record Limits(long maxUncompressedBytes, boolean createDevices) {
        public Limits {
            if (maxUncompressedBytes <= 0) {
                throw KilnException.invalid("maxUncompressedBytes must be positive, not " + maxUncompressedBytes);
            }
        }

        /** 64 GiB uncompressed per layer, no device nodes. */
        public static Limits defaults() {
            return new Limits(64L << 30, false);
        }
    }

    /** What one layer held: tar entries (whiteouts and skipped devices included) and uncompressed tar bytes. */
    public record Stats(long entries, long bytes) {
    }

    private static final int BUFFER = 256 * 1024;

    private final Limits limits;

    public LayerApplier(Limits limits) {
        this.limits = Objects.requireNonNull(limits, "limits");
    }

    /**
     * Applies {@code blob} onto {@code root} (created if missing). Throws a {@link KilnException}: CORRUPT for a
     * truncated, corrupt, oversized or hostile layer (one line naming the digest and the entry), NOT_FOUND for a
     * missing blob, INTERNAL when writing fails. On failure the caller deletes {@code root}; nothing is rolled back.
     */
    public Stats apply(Path blob, MediaType.Compression compression, Digest layerDigest, Path root) {
        Path top = root.toAbsolutePath().normalize();
        long entries = 0;
        TarArchiveEntry entry = null;
        try (InputStream file = Files.newInputStream(blob);
             SizeLimit tarBytes = new SizeLimit(decompress(new BufferedInputStream(file, BUFFER), compression),
                     limits.maxUncompressedBytes());
             TarArchiveInputStream tar = new TarArchiveInputStream(new BufferedInputStream(tarBytes, BUFFER))) {
            Files.createDirectories(top);
            Changeset changes = new Changeset(new RootTree(top), limits.createDevices());
            while ((entry = next(tar)) != null) {
                entries++;
                changes.apply(entry, tar);
            }
            entry = null;
            drain(tarBytes); // read to the end, so gzip and zstd check their trailers
            changes.finish();
            return new Stats(entries, tarBytes.count);
        } catch (Changeset.BadEntry e) {
            throw badEntry(layerDigest, entry, e.getMessage());
        } catch (InvalidPathException e) {
            throw badEntry(layerDigest, entry, "has a name or link target this system cannot use");
        } catch (Changeset.UnreadableBlob e) {
            throw unreadable(layerDigest, (IOException) e.getCause());
        } catch (NoSuchFileException e) {
            if (!Files.exists(blob)) {
                throw KilnException.notFound(prefix(layerDigest) + "blob " + blob + " is missing (pull the image again)");
            }
            throw writeFailed(layerDigest, entry, e);
        } catch (IOException e) {
            throw writeFailed(layerDigest, entry, e);
        }
    }

    private static InputStream decompress(InputStream in, MediaType.Compression compression) {
        try {
            return switch (compression) {
                case NONE -> in;
                case GZIP -> GzipCompressorInputStream.builder().setInputStream(in).setDecompressConcatenated(true).get();
                case ZSTD -> new ZstdInputStreamNoFinalizer(in); // buffered above, with the tar stream
            };
        } catch (IOException e) {
            throw new Changeset.UnreadableBlob(e);
        }
    }

    private static void drain(InputStream in) {
        try {
            in.transferTo(OutputStream.nullOutputStream());
        } catch (IOException e) {
            throw new Changeset.UnreadableBlob(e);
        }
    }

    private static TarArchiveEntry next(TarArchiveInputStream tar) {
        try {
            return tar.getNextEntry();
        } catch (IOException e) {
            throw new Changeset.UnreadableBlob(e);
        } catch (RuntimeException e) { // commons-compress throws these on some malformed headers
            throw new Changeset.UnreadableBlob(new IOException(e.toString(), e));
        }
    }

    private KilnException unreadable(Digest layer, IOException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof SizeLimit.Exceeded) {
                return KilnException.corrupt(prefix(layer) + "more than " + limits.maxUncompressedBytes()
                        + " bytes uncompressed (a decompression bomb, or raise the layer size limit if you trust it)");
            }
        }
        return new KilnException(KilnException.Kind.CORRUPT, oneLine(prefix(layer) + "cannot read the blob: "
                + e.getMessage() + " (it is truncated or corrupt; delete it and pull again)"), e);
    }

    private static KilnException badEntry(Digest layer, TarArchiveEntry entry, String reason) {
        return KilnException.corrupt(prefix(layer) + "entry " + (entry == null ? "?" : quote(entry.getName())) + " "
                + reason + " (the layer is malformed or hostile; do not use this image)");
    }

    private static KilnException writeFailed(Digest layer, TarArchiveEntry entry, Exception e) {
        String what = entry == null ? "" : "entry " + quote(entry.getName()) + ": ";
        return new KilnException(KilnException.Kind.INTERNAL,
                oneLine(prefix(layer) + "cannot write " + what + e + " (check free space and permissions)"), e);
    }

    private static String prefix(Digest layer) {
        return "layer " + layer + ": ";
    }

    /** The name in quotes, control characters escaped and long names cut, so the message stays one line. */
    static String quote(String name) {
        String shown = name.length() > 200 ? name.substring(0, 200) + "…" : name;
        return "\"" + oneLine(shown.replace("\\", "\\\\").replace("\"", "\\\"")) + "\"";
    }

    private static String oneLine(String s) {
        StringBuilder out = new StringBuilder(s.length());
        s.codePoints().forEach(c -> {
            if (Character.isISOControl(c)) {
                out.append(String.format("\\x%02x", c));
            } else {
                out.appendCodePoint(c);
            }
        });
        return out.toString();
    }

    /** Counts the uncompressed tar bytes and stops at the limit. */
    private static final class SizeLimit extends FilterInputStream {
        static final class Exceeded extends IOException {
            Exceeded() {
                super("uncompressed size limit exceeded");
            }
        }

        private final long max;
        private long count;

        SizeLimit(InputStream in, long max) {
            super(in);
            this.max = max;
        }

        @Override
        public int read() throws IOException {
            int b = in.read();
            if (b >= 0) {
                add(1);
            }
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = in.read(b, off, len);
            return n < 0 ? n : (int) add(n);
        }

        @Override
        public long skip(long n) throws IOException {
            return add(in.skip(n));
        }

        private long add(long n) throws IOException {
            count += n;
            if (count > max) {
                throw new Exceeded();
            }
            return n;
        }
    }
}
