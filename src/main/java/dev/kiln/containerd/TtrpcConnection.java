package dev.kiln.containerd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/**
 * One TTRPC connection's framing (containerd/ttrpc PROTOCOL.md): a 10-byte header — data length (uint32 big-endian),
 * stream id (uint32), message type (1 request, 2 response, 3 data), flags — then the data, at most 4 MiB. Reads come
 * from one thread; writes are serialised here so concurrent responses never interleave.
 */
final class TtrpcConnection implements AutoCloseable {

    static final byte REQUEST = 1;
    static final byte RESPONSE = 2;
    static final int MAX_DATA = 4 << 20;

    record Frame(int stream, byte type, byte flags, byte[] data) {}

    private final SocketChannel channel;
    private final Object writeLock = new Object();

    TtrpcConnection(SocketChannel channel) {
        this.channel = channel;
    }

    SocketChannel channel() {
        return channel;
    }

    /** The next frame; throws EOFException at the end of the stream, IOException on an oversized frame. */
    Frame read() throws IOException {
        ByteBuffer header = ByteBuffer.allocate(10);
        fill(header);
        header.flip();
        int length = header.getInt();
        int stream = header.getInt();
        byte type = header.get();
        byte flags = header.get();
        if (length < 0 || length > MAX_DATA) {
            throw new IOException("ttrpc frame of " + Integer.toUnsignedString(length) + " bytes is over 4 MiB");
        }
        ByteBuffer data = ByteBuffer.allocate(length);
        fill(data);
        return new Frame(stream, type, flags, data.array());
    }

    void write(int stream, byte type, byte[] data) throws IOException {
        if (data.length > MAX_DATA) throw new IOException("ttrpc message of " + data.length + " bytes is over 4 MiB");
        ByteBuffer frame = ByteBuffer.allocate(10 + data.length);
        frame.putInt(data.length).putInt(stream).put(type).put((byte) 0).put(data).flip();
        synchronized (writeLock) {
            while (frame.hasRemaining()) channel.write(frame);
        }
    }

    private void fill(ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) throw new EOFException("ttrpc connection closed");
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing a connection that already failed
        }
    }
}
