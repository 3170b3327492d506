package dev.kiln.isolation;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One client connection to a shim's attach socket. Frames use Docker's stdcopy header: {@code [type, 0, 0, 0,
 * length (4 bytes, big-endian)]} then the payload (docs/shim.md). Writes are thread-safe; {@link #read} is meant for
 * one reading thread.
 */
public final class AttachConnection implements AutoCloseable {

    /** One frame; see the type constants. */
    public record Frame(int type, byte[] payload) {
        /** client → shim: bytes for the command's stdin */
        public static final int STDIN = 0;
        /** shim → client: output on the command's stdout (all output, with a tty) */
        public static final int STDOUT = 1;
        /** shim → client: output on the command's stderr */
        public static final int STDERR = 2;
        /** shim → client: the command's exit code in decimal; the last frame before the shim closes */
        public static final int EXIT = 3;
        /** client → shim: close the command's stdin (VEOF on a tty) */
        public static final int CLOSE_STDIN = 4;
        /** client → shim: "ROWS COLS", the terminal size */
        public static final int RESIZE = 5;
        /** client → shim: a signal number in decimal, sent to the command's process group */
        public static final int SIGNAL = 6;

        public String text() {
            return new String(payload, StandardCharsets.UTF_8);
        }
    }

    /** The shim accepts payloads up to this size; longer stdin is split. */
    static final int MAX_PAYLOAD = 65536;
    private static final int MAX_INCOMING = 16 << 20;
    private static final int MAX_SOCKET_PATH = 108; // sizeof(sun_path), including the terminating NUL

    private final SocketChannel channel;
    private final Object writeLock = new Object();
    private final ByteBuffer header = ByteBuffer.allocate(8);

    private AttachConnection(SocketChannel channel) {
        this.channel = channel;
    }

    public static AttachConnection open(Path socket) throws IOException {
        SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            if (socket.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8).length < MAX_SOCKET_PATH) {
                channel.connect(UnixDomainSocketAddress.of(socket));
            } else {
                connectThroughShortLink(channel, socket.toAbsolutePath());
            }
        } catch (IOException e) {
            channel.close();
            throw new IOException("cannot attach to " + socket + ": " + e.getMessage(), e);
        }
        return new AttachConnection(channel);
    }

    /**
     * A unix socket address holds at most 107 bytes, but connect() follows symlinks: a long path is reached through a
     * link in a fresh private temporary directory, removed once connected.
     */
    private static void connectThroughShortLink(SocketChannel channel, Path socket) throws IOException {
        Path dir = Files.createTempDirectory("kiln-attach-");
        Path link = dir.resolve("s");
        try {
            Files.createSymbolicLink(link, socket);
            channel.connect(UnixDomainSocketAddress.of(link));
        } finally {
            Files.deleteIfExists(link);
            Files.deleteIfExists(dir);
        }
    }

    /** The next frame from the shim, blocking; null when the shim closed the connection (after the exit frame). */
    public Frame read() throws IOException {
        header.clear();
        if (!fill(header, true)) return null;
        int type = header.get(0) & 0xff;
        int length = header.getInt(4);
        if (length < 0 || length > MAX_INCOMING) throw new IOException("attach frame of " + length + " bytes");
        ByteBuffer payload = ByteBuffer.allocate(length);
        fill(payload, false);
        return new Frame(type, payload.array());
    }

    public void stdin(byte[] data) throws IOException {
        for (int off = 0; off < data.length; off += MAX_PAYLOAD) {
            write(Frame.STDIN, ByteBuffer.wrap(data, off, Math.min(MAX_PAYLOAD, data.length - off)));
        }
    }

    public void closeStdin() throws IOException {
        write(Frame.CLOSE_STDIN, ByteBuffer.allocate(0));
    }

    public void resize(int rows, int cols) throws IOException {
        if (rows < 0 || rows > 65535 || cols < 0 || cols > 65535) {
            throw new IllegalArgumentException("terminal size out of range: " + rows + "x" + cols);
        }
        write(Frame.RESIZE, ascii(rows + " " + cols));
    }

    public void signal(int signal) throws IOException {
        if (signal < 1 || signal > 64) throw new IllegalArgumentException("no such signal: " + signal);
        write(Frame.SIGNAL, ascii(Integer.toString(signal)));
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    private void write(int type, ByteBuffer payload) throws IOException {
        ByteBuffer frame = ByteBuffer.allocate(8 + payload.remaining());
        frame.put((byte) type).put((byte) 0).put((byte) 0).put((byte) 0).putInt(payload.remaining()).put(payload).flip();
        synchronized (writeLock) {
            while (frame.hasRemaining()) channel.write(frame);
        }
    }

    /** Fills {@code buffer}; false on a clean end of stream before any byte when {@code eofAllowed}. */
    private boolean fill(ByteBuffer buffer, boolean eofAllowed) throws IOException {
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                if (eofAllowed && buffer.position() == 0) return false;
                throw new EOFException("attach connection closed in the middle of a frame");
            }
        }
        return true;
    }

    private static ByteBuffer ascii(String text) {
        return ByteBuffer.wrap(text.getBytes(StandardCharsets.US_ASCII));
    }
}
