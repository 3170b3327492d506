package dev.kiln.image.archive;

import com.github.luben.zstd.ZstdInputStream;
import dev.kiln.image.MediaType.Compression;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Tells a tar's compression by its magic bytes, for archives that do not say (docker save, import). */
final class Compressions {
    private Compressions() {
    }

    static Compression sniff(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return sniff(in.readNBytes(4));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Compression sniff(byte[] head) {
        if (head.length >= 2 && (head[0] & 0xff) == 0x1f && (head[1] & 0xff) == 0x8b) {
            return Compression.GZIP;
        }
        if (head.length >= 4 && (head[0] & 0xff) == 0x28 && (head[1] & 0xff) == 0xb5 && (head[2] & 0xff) == 0x2f
                && (head[3] & 0xff) == 0xfd) {
            return Compression.ZSTD;
        }
        return Compression.NONE;
    }

    /** Wraps {@code in} (which must support mark/reset) to yield the uncompressed tar. */
    static InputStream decompressed(BufferedInputStream in) throws IOException {
        in.mark(4);
        byte[] head = in.readNBytes(4);
        in.reset();
        return switch (sniff(head)) {
            case GZIP -> new GzipCompressorInputStream(in, true);
            case ZSTD -> new ZstdInputStream(in);
            case NONE -> in;
        };
    }
}
