package dev.kiln.rootfs;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Random;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The decompression read-ahead of an unpack: the same bytes, the source's failure where it happened, no thread left. */
class ReadAheadTest {

    private static byte[] gzip(byte[] data) throws IOException {
        var out = new java.io.ByteArrayOutputStream();
        try (var gz = new java.util.zip.GZIPOutputStream(out)) {
            gz.write(data);
        }
        return out.toByteArray();
    }

    @Test
    void passesEveryByteInOrderWhateverTheReadSizes() throws IOException {
        byte[] data = new byte[5 * 256 * 1024 + 12345]; // several chunks and a partial one
        new Random(7).nextBytes(data);
        try (InputStream in = new ReadAhead(new GZIPInputStream(new ByteArrayInputStream(gzip(data))), "t")) {
            byte[] got = new byte[data.length];
            int off = 0;
            got[off++] = (byte) in.read(); // single bytes and odd-sized reads mixed
            for (int n; off < got.length && (n = in.read(got, off, Math.min(7919, got.length - off))) > 0; ) {
                off += n;
            }
            assertThat(off).isEqualTo(data.length);
            assertThat(got).isEqualTo(data);
            assertThat(in.read()).isEqualTo(-1);
            assertThat(in.read(new byte[8], 0, 8)).isEqualTo(-1);
        }
    }

    @Test
    void aTruncatedBlobFailsTheReaderWithTheDecompressorsError() throws IOException {
        byte[] data = new byte[3 * 256 * 1024];
        new Random(9).nextBytes(data);
        byte[] gz = gzip(data);
        byte[] cut = java.util.Arrays.copyOf(gz, gz.length / 2);
        try (InputStream in = new ReadAhead(new GZIPInputStream(new ByteArrayInputStream(cut)), "t")) {
            assertThatThrownBy(() -> in.transferTo(java.io.OutputStream.nullOutputStream()))
                    .isInstanceOf(java.io.EOFException.class);
        }
        byte[] corrupt = gz.clone();
        for (int i = gz.length / 3; i < gz.length / 3 + 64; i++) {
            corrupt[i] ^= 0x5a;
        }
        try (InputStream in = new ReadAhead(new GZIPInputStream(new ByteArrayInputStream(corrupt)), "t")) {
            assertThatThrownBy(() -> in.transferTo(java.io.OutputStream.nullOutputStream()))
                    .isInstanceOf(ZipException.class);
        }
    }

    @Test
    void closingBeforeTheEndStopsItsThreadAndClosesTheSource() throws Exception {
        boolean[] closed = {false};
        InputStream endless = new InputStream() {
            @Override
            public int read() {
                return 1;
            }

            @Override
            public int read(byte[] b, int off, int len) {
                java.util.Arrays.fill(b, off, off + len, (byte) 1);
                return len;
            }

            @Override
            public void close() {
                closed[0] = true;
            }
        };
        ReadAhead in = new ReadAhead(endless, "kiln-read-ahead-test");
        assertThat(in.read(new byte[1000])).isPositive();
        in.close(); // the reader is blocked on a full queue: close must still end it
        assertThat(closed[0]).isTrue();
        assertThat(Thread.getAllStackTraces().keySet()).noneMatch(t -> t.getName().equals("kiln-read-ahead-test"));
    }
}
