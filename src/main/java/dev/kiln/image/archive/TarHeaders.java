package dev.kiln.image.archive;

import dev.kiln.KilnException;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarUtils;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * A tar stream copied as it is checked, for {@code kiln import}: commons-compress takes any 512 bytes for a header
 * (a {@code \x00\xff} pattern became a mode-000 directory named {@code ?}), so here the first block must be a tar
 * header (its checksum right, its magic ustar, GNU or none as in V7), every header's checksum must be right and every
 * name one a Linux filesystem can hold ({@link EntryName}). What is not is refused, INVALID and one line, before the
 * layer is stored. Reading and writing failures stay {@link IOException}s for the caller.
 */
final class TarHeaders {
    private static final int BLOCK = 512;
    private static final int MAGIC_OFFSET = 257;
    private static final byte[] USTAR = "ustar\u000000".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] GNU = "ustar  \u0000".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] V7 = new byte[8];

    private TarHeaders() {
    }

    /**
     * Copies the tar stream {@code in} to {@code out} whole, checking it as it goes. A refused stream is still read
     * to its end (not copied): a client still sending it then gets the refusal, not a broken pipe.
     */
    static void copy(InputStream in, OutputStream out) throws IOException {
        try {
            check(in, out);
        } catch (KilnException e) {
            try {
                in.transferTo(OutputStream.nullOutputStream());
            } catch (IOException ignored) {
                // the refusal is the answer
            }
            throw e;
        }
    }

    private static void check(InputStream in, OutputStream out) throws IOException {
        Tee tee = new Tee(in, out);
        long entries = 0;
        TarArchiveInputStream tar = new TarArchiveInputStream(tee);
        while (true) {
            TarArchiveEntry entry;
            try {
                entry = tar.getNextEntry();
            } catch (IOException e) {
                tee.rethrowFailure(); // reading the input or writing the copy failed: not the archive's fault
                throw malformed(tee, entries, e.getMessage());
            } catch (RuntimeException e) { // commons-compress throws these on some malformed headers
                tee.rethrowFailure(); // ... and the content store a KilnException for a full disk
                throw malformed(tee, entries, e.toString());
            }
            tee.rethrowFailure(); // commons-compress may take a failed read for the end of the archive
            if (entries == 0) {
                firstBlock(tee.first, tee.firstLength);
            }
            if (entry == null) {
                break;
            }
            if (!entry.isCheckSumOK()) {
                throw notTar(entries, "its header's checksum is wrong");
            }
            String problem = EntryName.problem(entry.getName());
            if (problem != null) {
                throw KilnException.invalid("cannot import: entry " + KilnException.quote(entry.getName()) + " "
                        + problem);
            }
            entries++;
        }
        tee.transferTo(OutputStream.nullOutputStream()); // the rest (end blocks, padding) is copied too
    }

    /** An empty stream, a short one, or a first block that is no tar header: not an archive at all. */
    private static void firstBlock(byte[] block, int length) {
        if (length == 0) {
            throw KilnException.invalid("cannot import: the input is empty, not a tar archive");
        }
        if (length < BLOCK) {
            throw KilnException.invalid("cannot import: the input is not a tar archive (" + length
                    + " bytes, less than one tar header)");
        }
        boolean zero = true;
        for (byte b : block) {
            zero &= b == 0;
        }
        if (zero) {
            return; // an archive with no entries: its end blocks come first
        }
        byte[] magic = Arrays.copyOfRange(block, MAGIC_OFFSET, MAGIC_OFFSET + 8);
        boolean knownMagic = Arrays.equals(magic, USTAR) || Arrays.equals(magic, GNU) || Arrays.equals(magic, V7);
        if (!knownMagic || !TarUtils.verifyCheckSum(block)) {
            throw KilnException.invalid("cannot import: the input is not a tar archive (its first 512 bytes are "
                    + "not a tar header; plain, gzip and zstd tarballs are imported)");
        }
    }

    private static KilnException malformed(Tee tee, long entries, String why) {
        if (entries == 0) {
            firstBlock(tee.first, tee.firstLength); // says "not a tar archive" when the start already shows it
        }
        return notTar(entries, "its header cannot be parsed: " + why);
    }

    private static KilnException notTar(long entries, String why) {
        return KilnException.invalid("cannot import: the input is not a tar archive" + (entries == 0 ? ""
                : " after entry " + entries) + " (" + KilnException.escape(why) + ")");
    }

    /**
     * Every byte read (and skipped) is written to {@code out} in order, so the copy is the input whatever
     * commons-compress reads or skips; the first block is kept for {@link #firstBlock}. A failure to read or
     * write is remembered, to tell it from a malformed archive.
     */
    private static final class Tee extends FilterInputStream {
        private final OutputStream out;
        final byte[] first = new byte[BLOCK];
        int firstLength;
        private Exception failed;

        Tee(InputStream in, OutputStream out) {
            super(in);
            this.out = out;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n;
            try {
                n = in.read(b, off, len);
                if (n > 0) {
                    out.write(b, off, n);
                }
            } catch (IOException | RuntimeException e) {
                failed = e;
                throw e;
            }
            if (n > 0 && firstLength < BLOCK) {
                int keep = Math.min(n, BLOCK - firstLength);
                System.arraycopy(b, off, first, firstLength, keep);
                firstLength += keep;
            }
            return n;
        }

        /** Throws the failure to read the input or to write the copy, if there was one. */
        void rethrowFailure() throws IOException {
            if (failed instanceof IOException io) {
                throw io;
            }
            if (failed instanceof RuntimeException re) {
                throw re;
            }
        }

        /** Skipped bytes are read, so they are copied too. */
        @Override
        public long skip(long n) throws IOException {
            byte[] buf = new byte[8192];
            long left = n;
            while (left > 0) {
                int r = read(buf, 0, (int) Math.min(buf.length, left));
                if (r < 0) {
                    break;
                }
                left -= r;
            }
            return n - left;
        }

        @Override
        public boolean markSupported() {
            return false;
        }

        @Override
        public void close() {
            // the caller closes the input and the copy
        }
    }
}
