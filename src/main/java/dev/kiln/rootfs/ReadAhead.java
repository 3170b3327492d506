package dev.kiln.rootfs;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * Reads a stream ahead on a thread of its own, so that producing its bytes (a layer's gzip or zstd decompression)
 * and consuming them (parsing the tar and writing the files) run on two cores at once, as {@code tar -xzf} does with
 * its gzip child. Measured on the pull benchmark's layers: decompression and file writing take about the same time,
 * so an unpack takes about the longer of the two instead of their sum (docs/image-store.md).
 *
 * <p>Memory is bounded: at most {@code DEPTH} chunks of {@code CHUNK} bytes wait in the queue. A failure of the
 * source (a corrupt or truncated blob) is thrown to the reader at the point it reached, as the source would have
 * thrown it. {@link #close} stops the reader thread and closes the source.
 */
final class ReadAhead extends InputStream {

    private static final int CHUNK = 256 * 1024;
    private static final int DEPTH = 16;
    private static final byte[] END = new byte[0];

    private final InputStream source;
    private final BlockingQueue<byte[]> queue = new ArrayBlockingQueue<>(DEPTH);
    private final Thread reader;
    private volatile Throwable failure;
    private volatile boolean closed;
    private byte[] current = new byte[0];
    private int pos;
    private boolean ended;

    ReadAhead(InputStream source, String name) {
        this.source = source;
        // a platform thread: the decompressor spends its time in native code (zlib, zstd), which would hold a
        // virtual thread's carrier and so starve the pull's downloads, which run on virtual threads
        this.reader = Thread.ofPlatform().daemon().name(name).start(this::fill);
    }

    private void fill() {
        try {
            while (!closed) {
                byte[] chunk = new byte[CHUNK];
                int n = source.readNBytes(chunk, 0, CHUNK);
                if (n == 0) {
                    break;
                }
                queue.put(n == CHUNK ? chunk : java.util.Arrays.copyOf(chunk, n));
                if (n < CHUNK) {
                    break;
                }
            }
        } catch (InterruptedException e) {
            return; // closed: nobody reads any more
        } catch (IOException | RuntimeException | Error e) {
            failure = e;
        }
        try {
            queue.put(END);
        } catch (InterruptedException e) {
            // closed meanwhile
        }
    }

    /** The next chunk, or false at the end; throws what the source threw. */
    private boolean next() throws IOException {
        if (ended) {
            return false;
        }
        byte[] chunk;
        try {
            chunk = queue.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while unpacking");
        }
        if (chunk == END) {
            ended = true;
            Throwable f = failure;
            if (f instanceof IOException io) {
                throw io;
            }
            if (f instanceof RuntimeException re) {
                throw re;
            }
            if (f instanceof Error err) {
                throw err;
            }
            return false;
        }
        current = chunk;
        pos = 0;
        return true;
    }

    @Override
    public int read() throws IOException {
        if (pos == current.length && !next()) {
            return -1;
        }
        return current[pos++] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        java.util.Objects.checkFromIndexSize(off, len, b.length);
        if (len == 0) {
            return 0;
        }
        if (pos == current.length && !next()) {
            return -1;
        }
        int n = Math.min(len, current.length - pos);
        System.arraycopy(current, pos, b, off, n);
        pos += n;
        return n;
    }

    @Override
    public int available() {
        return current.length - pos;
    }

    @Override
    public void close() throws IOException {
        closed = true;
        reader.interrupt();
        try {
            reader.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        source.close();
    }
}
