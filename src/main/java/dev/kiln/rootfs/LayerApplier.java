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
        String prefix = prefix(layerDigest);
        try (InputStream file = Files.newInputStream(blob)) {
            InputStream layer = decompress(new BufferedInputStream(file, BUFFER), compression);
            if (compression != MediaType.Compression.NONE) {
                // decompression on a second core while this thread writes the files
                layer = new ReadAhead(layer, "unpack-" + layerDigest.shortId());
            }
            return unpack(layer, root.toAbsolutePath().normalize(),
                    tree -> new Changeset(tree, limits.createDevices(), null), prefix,
                    "the layer is malformed or hostile; do not use this image");
        } catch (NoSuchFileException e) {
            throw KilnException.notFound(prefix + "blob " + blob + " is missing (pull the image again)");
        } catch (Changeset.UnreadableBlob e) { // a gzip or zstd header the decompressor cannot read
            throw unreadable(prefix, (IOException) e.getCause());
        } catch (IOException e) {
            throw unreadable(prefix, e);
        }
    }

    /**
     * How {@link #extract} writes: {@code noOverwriteDirNonDir} refuses an entry that would replace a directory with
     * a non-directory or the reverse (Docker's archive PUT parameter); without {@code keepOwners} every entry is
     * owned by root (0:0), as Docker's {@code docker cp} without {@code -a}.
     */
    /**
     * How a client's archive is extracted. {@code keepSetId}: keep setuid/setgid bits — yes into a sandbox (as
     * Docker), no onto the host, where a sandbox's setuid file owned by root would be a way out of it.
     */
    public record Extraction(boolean noOverwriteDirNonDir, boolean keepOwners, boolean keepSetId) {
    }

    /**
     * {@code docker cp} into a sandbox: a plain tar from a client extracted into directory {@code into} (a path inside
     * {@code root} that {@link RootPaths} resolved to a real directory, relative, {@code ""} for the root), with the
     * same guarantees as a layer: nothing outside {@code root} is written or followed. Unlike a layer, {@code .wh.}
     * names are ordinary files, and a name or hard link that climbs out of {@code into} with {@code ..} is refused
     * (INVALID) — the client's archive is relative to the destination. Throws a {@link KilnException}.
     */
    public Stats extract(InputStream tar, Path root, String into, Extraction how) {
        return unpack(tar, root.toAbsolutePath().normalize(),
                tree -> new Changeset(tree, limits.createDevices(), new Changeset.Destination(into, how)), "",
                "the archive is malformed or hostile");
    }

    private Stats unpack(InputStream in, Path top, java.util.function.Function<RootTree, Changeset> changeset,
                         String prefix, String hostile) {
        long entries = 0;
        TarArchiveEntry entry = null;
        try (SizeLimit tarBytes = new SizeLimit(in, limits.maxUncompressedBytes());
             TarArchiveInputStream tar = new TarArchiveInputStream(new BufferedInputStream(tarBytes, BUFFER))) {
            Files.createDirectories(top);
            Changeset changes = changeset.apply(new RootTree(top));
            while ((entry = next(tar)) != null) {
                entries++;
                changes.apply(entry, tar);
            }
            entry = null;
            drain(tarBytes); // read to the end, so gzip and zstd check their trailers
            if (entries == 0 && tarBytes.count > 0 && tarBytes.count < 512) {
                // commons-compress reads a short first record as the end: a few bytes of text are not an archive
                throw new Changeset.UnreadableBlob(new IOException("only " + tarBytes.count
                        + " bytes, less than one tar header"));
            }
            changes.finish();
            return new Stats(entries, tarBytes.count);
        } catch (Changeset.Refused e) {
            throw KilnException.invalid(prefix + "entry " + (entry == null ? "?" : quote(entry.getName())) + " "
                    + e.getMessage());
        } catch (Changeset.BadEntry e) {
            throw KilnException.corrupt(prefix + "entry " + (entry == null ? "?" : quote(entry.getName())) + " "
                    + e.getMessage() + " (" + hostile + ")");
        } catch (InvalidPathException e) {
            throw KilnException.corrupt(prefix + "entry " + (entry == null ? "?" : quote(entry.getName()))
                    + " has a name or link target this system cannot use (" + hostile + ")");
        } catch (Changeset.UnreadableBlob e) {
            throw unreadable(prefix, (IOException) e.getCause());
        } catch (IOException e) {
            throw writeFailed(prefix, entry, e);
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
            TarArchiveEntry entry = tar.getNextEntry();
            // commons-compress takes any 512 bytes for a header: a wrong checksum means they are not one
            if (entry != null && !entry.isCheckSumOK()) {
                throw new IOException("a header's checksum is wrong");
            }
            return entry;
        } catch (IOException e) {
            throw new Changeset.UnreadableBlob(e);
        } catch (RuntimeException e) { // commons-compress throws these on some malformed headers
            throw new Changeset.UnreadableBlob(new IOException(e.toString(), e));
        }
    }

    private KilnException unreadable(String prefix, IOException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof SizeLimit.Exceeded) {
                return KilnException.corrupt(prefix + "more than " + limits.maxUncompressedBytes()
                        + " bytes uncompressed (a decompression bomb, or raise the layer size limit if you trust it)");
            }
        }
        return new KilnException(KilnException.Kind.CORRUPT, oneLine(prefix + "cannot read the "
                + (prefix.isEmpty() ? "archive: " : "blob: ") + e.getMessage() + (prefix.isEmpty()
                ? " (it is truncated or not a tar)" : " (it is truncated or corrupt; delete it and pull again)")), e);
    }

    private static KilnException writeFailed(String prefix, TarArchiveEntry entry, Exception e) {
        if (e instanceof java.nio.file.FileSystemException f && "File name too long".equals(f.getReason())) {
            // ENAMETOOLONG: the name fits the rules alone but not below this root (or a link target is too long)
            return KilnException.corrupt(oneLine(prefix + "entry " + (entry == null ? "?" : quote(entry.getName()))
                    + " has a name or link target too long for this system"));
        }
        String what = entry == null ? "" : "entry " + quote(entry.getName()) + ": ";
        return new KilnException(KilnException.Kind.INTERNAL,
                oneLine(prefix + "cannot write " + what + e + " (check free space and permissions)"), e);
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
