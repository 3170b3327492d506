package dev.kiln.image;

import dev.kiln.KilnException;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Content-addressed blobs under {@code ROOT/blobs/sha256/<hex>}. Writes go to {@code ROOT/ingest/} and are committed
 * by an atomic rename only after the digest (and size, when known) checked out, so a reader never sees a partial or
 * wrong blob and a failed download leaves nothing behind. Concurrent writers of the same digest each write their own
 * ingest file; the first rename wins and the others find the blob present.
 */
public final class ContentStore {

    private final Path blobs;
    private final Path ingest;

    public ContentStore(Path root) {
        this.blobs = root.resolve("blobs").resolve("sha256");
        this.ingest = root.resolve("ingest");
        try {
            Files.createDirectories(blobs);
            Files.createDirectories(ingest);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public boolean has(Digest d) {
        return Files.isRegularFile(blobs.resolve(d.hex()));
    }

    /** Where a blob is or will be once committed (for readers that wait for it). */
    public Path blobPath(Digest d) {
        return blobs.resolve(d.hex());
    }

    /** The committed blob's path; callers only read it. */
    public Path path(Digest d) {
        Path p = blobs.resolve(d.hex());
        if (!Files.isRegularFile(p)) {
            throw KilnException.notFound("blob " + d + " is not in the content store");
        }
        return p;
    }

    public byte[] read(Digest d) {
        try {
            return Files.readAllBytes(path(d));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public long size(Digest d) {
        try {
            return Files.size(path(d));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Stores small content (manifests, configs) and returns its digest. */
    public Digest put(byte[] bytes) {
        return put(bytes, new java.util.HashSet<>());
    }

    /** As {@link #put(byte[])}; adds the digest to {@code added} when the store did not have the blob. */
    public Digest put(byte[] bytes, Set<Digest> added) {
        Digest d = Digest.of(bytes);
        if (!has(d)) {
            try (Writer w = writer(d, bytes.length)) {
                w.write(bytes);
                w.commit();
                if (w.added()) {
                    added.add(d);
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return d;
    }

    /**
     * Opens an ingest for content that must hash to {@code expected} (null: any digest, learned on commit) and be
     * {@code expectedSize} bytes long (negative: unknown). Close without commit discards it.
     */
    public Writer writer(Digest expected, long expectedSize) {
        try {
            Path tmp = ingest.resolve((expected == null ? "any" : expected.hex()) + "." + UUID.randomUUID());
            return new Writer(tmp, expected, expectedSize);
        } catch (IOException e) {
            throw writeFailed(e);
        }
    }

    /**
     * A failed write to the store: kiln's own failure (most often a full disk), said as such, so that it is not
     * taken for a problem with what was being read (an archive, a download, stdin).
     */
    private KilnException writeFailed(IOException e) {
        return new KilnException(KilnException.Kind.INTERNAL, "cannot write to kiln's content store "
                + ingest.getParent() + ": " + e.getMessage() + " (free space there, e.g. with kiln rmi)", e);
    }

    public void delete(Digest d) {
        try {
            Files.deleteIfExists(blobs.resolve(d.hex()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public Set<Digest> list() {
        try (Stream<Path> s = Files.list(blobs)) {
            Set<Digest> out = new TreeSet<>();
            s.map(p -> p.getFileName().toString()).filter(n -> n.matches("[a-f0-9]{64}"))
                    .forEach(n -> out.add(new Digest(n)));
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Removes ingest files left by a process that died mid-download. */
    public void cleanIngest() {
        try (Stream<Path> s = Files.list(ingest)) {
            for (Path p : s.toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** One in-flight blob write; hashes as it goes. */
    public final class Writer extends OutputStream {
        private final Path tmp;
        private final Digest expected;
        private final long expectedSize;
        private final FileChannel channel;
        private final MessageDigest hash = Digest.sha256();
        private final OutputStream out;
        private long written;
        private boolean committed;
        private boolean added;

        private Writer(Path tmp, Digest expected, long expectedSize) throws IOException {
            this.tmp = tmp;
            this.expected = expected;
            this.expectedSize = expectedSize;
            this.channel = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            this.out = new DigestOutputStream(Channels.newOutputStream(channel), hash);
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            written += len;
            if (expectedSize >= 0 && written > expectedSize) {
                throw KilnException.corrupt("blob " + label() + " is larger than its descriptor's " + expectedSize
                        + " bytes");
            }
            try {
                out.write(b, off, len);
            } catch (IOException e) {
                throw writeFailed(e);
            }
        }

        public long written() {
            return written;
        }

        /** True once {@link #commit} published a blob the store did not have (false if it was there already). */
        public boolean added() {
            return added;
        }

        /** Verifies and atomically publishes the blob; returns its digest. */
        public Digest commit() throws IOException {
            try {
                out.flush();
                channel.force(true);
                channel.close();
            } catch (IOException e) {
                throw writeFailed(e);
            }
            Digest actual = Digest.fromHash(hash.digest());
            if (expected != null && !expected.equals(actual)) {
                throw KilnException.corrupt("blob " + expected + " failed verification: its content hashes to "
                        + actual + " (nothing was kept; the registry or archive is corrupt)");
            }
            if (expectedSize >= 0 && written != expectedSize) {
                throw KilnException.corrupt("blob " + actual + " is " + written + " bytes, its descriptor says "
                        + expectedSize + " (nothing was kept)");
            }
            Path target = blobs.resolve(actual.hex());
            boolean had = Files.exists(target);
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                added = !had;
            } catch (FileAlreadyExistsException | AtomicMoveNotSupportedException e) {
                Files.deleteIfExists(tmp);
            } catch (IOException e) {
                throw writeFailed(e);
            }
            committed = true;
            return actual;
        }

        private String label() {
            return expected == null ? "(unknown digest)" : expected.toString();
        }

        @Override
        public void close() throws IOException {
            if (channel.isOpen()) {
                channel.close();
            }
            if (!committed) {
                Files.deleteIfExists(tmp);
            }
        }
    }
}
