package dev.kiln.api.v1;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The framing of kilnd's attach, exec and logs streams: Docker's stdcopy header (type, three zero bytes, big-endian
 * length) so the same bytes serve Docker API clients. Types beyond Docker's 0/1/2 carry kiln's own events; the shim
 * speaks the same format (docs/shim.md).
 */
public record StreamFrame(int type, byte[] payload) {

    public static final int STDIN = 0;
    public static final int STDOUT = 1;
    public static final int STDERR = 2;
    /** Payload: the decimal exit code; always the last frame of a process's stream. */
    public static final int EXIT = 3;
    /** Payload: a one-line error that ended the stream early (the HTTP status was already sent). */
    public static final int ERROR = 9;

    private static final int MAX_PAYLOAD = 16 << 20;

    public static StreamFrame exit(int code) {
        return new StreamFrame(EXIT, Integer.toString(code).getBytes(StandardCharsets.US_ASCII));
    }

    public static StreamFrame error(String message) {
        return new StreamFrame(ERROR, message.getBytes(StandardCharsets.UTF_8));
    }

    public String text() {
        return new String(payload, StandardCharsets.UTF_8);
    }

    public void writeTo(OutputStream out) throws IOException {
        byte[] h = new byte[8];
        h[0] = (byte) type;
        int n = payload.length;
        h[4] = (byte) (n >>> 24);
        h[5] = (byte) (n >>> 16);
        h[6] = (byte) (n >>> 8);
        h[7] = (byte) n;
        out.write(h);
        out.write(payload);
    }

    /** The next frame, or null at a clean end of stream. */
    public static StreamFrame read(InputStream in) throws IOException {
        DataInputStream d = in instanceof DataInputStream di ? di : new DataInputStream(in);
        int type = d.read();
        if (type < 0) {
            return null;
        }
        d.readFully(new byte[3]);
        int n = d.readInt();
        if (n < 0 || n > MAX_PAYLOAD) {
            throw new IOException("stream frame of " + n + " bytes is out of bounds");
        }
        byte[] payload = new byte[n];
        try {
            d.readFully(payload);
        } catch (EOFException e) {
            throw new IOException("stream ended inside a frame", e);
        }
        return new StreamFrame(type, payload);
    }
}
