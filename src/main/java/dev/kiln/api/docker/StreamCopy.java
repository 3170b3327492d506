package dev.kiln.api.docker;

import dev.kiln.isolation.AttachConnection;

import java.io.IOException;
import java.io.OutputStream;

/**
 * Between a process's shim (frames: stdout 1, stderr 2, exit 3) and a Docker client: without a TTY the client gets
 * stdcopy frames 1 and 2 exactly as the shim sends them (the same header), with a TTY the raw payload bytes. The
 * shim's exit frame is kiln's, not Docker's: it ends the stream and is never forwarded.
 */
final class StreamCopy {

    /** Which output the client asked for, and how to write it. */
    record Options(boolean tty, boolean stdout, boolean stderr, boolean stdin) {
        String contentType() {
            return tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
        }
    }

    private StreamCopy() {
    }

    /** Copies output until the exit frame (or the shim's end), feeding the client's bytes to stdin meanwhile. */
    static void hijacked(HijackedConnection client, AttachConnection shim, Options o) throws IOException {
        hijacked(client, shim, o, null);
    }

    /**
     * As {@link #hijacked(HijackedConnection, AttachConnection, Options)}; with {@code detach} keys, the client typing
     * them ends the copy at once and leaves the process's stdin open (Docker's detach).
     */
    static void hijacked(HijackedConnection client, AttachConnection shim, Options o, DetachKeys detach)
            throws IOException {
        java.util.concurrent.atomic.AtomicBoolean detached = new java.util.concurrent.atomic.AtomicBoolean();
        if (o.stdin()) {
            Thread.ofVirtual().name("kilnd-stdin").start(() -> {
                try {
                    byte[] b;
                    while ((b = client.read()) != null) {
                        byte[] forward = detach == null ? b : detach.filter(b);
                        if (forward == null) {
                            detached.set(true);
                            shim.close(); // ends the output copy below; the process keeps its stdin
                            return;
                        }
                        if (forward.length > 0) {
                            shim.stdin(forward);
                        }
                    }
                    shim.closeStdin();
                } catch (IOException e) {
                    // the client or the shim closed: output copying notices on its own
                }
            });
        }
        try {
            output(shim, o, (bytes, off, len) -> client.write(bytes, off, len));
        } catch (IOException e) {
            if (!detached.get()) {
                throw e;
            }
        }
    }

    /** Copies output into a plain HTTP response body (a client that did not ask for the upgrade). */
    static void body(OutputStream out, AttachConnection shim, Options o) throws IOException {
        output(shim, o, (bytes, off, len) -> {
            out.write(bytes, off, len);
            out.flush();
        });
    }

    interface Sink {
        void write(byte[] bytes, int offset, int length) throws IOException;
    }

    private static void output(AttachConnection shim, Options o, Sink sink) throws IOException {
        while (true) {
            AttachConnection.Frame f = shim.read();
            if (f == null || f.type() == AttachConnection.Frame.EXIT) {
                return;
            }
            boolean wanted = f.type() == AttachConnection.Frame.STDOUT ? o.stdout()
                    : f.type() == AttachConnection.Frame.STDERR && o.stderr();
            if (!wanted || f.payload().length == 0) {
                continue;
            }
            if (o.tty()) {
                sink.write(f.payload(), 0, f.payload().length);
            } else {
                sink.write(frame(f.type(), f.payload()), 0, 8 + f.payload().length);
            }
        }
    }

    static byte[] frame(int type, byte[] payload) {
        byte[] b = new byte[8 + payload.length];
        b[0] = (byte) type;
        int n = payload.length;
        b[4] = (byte) (n >>> 24);
        b[5] = (byte) (n >>> 16);
        b[6] = (byte) (n >>> 8);
        b[7] = (byte) n;
        System.arraycopy(payload, 0, b, 8, n);
        return b;
    }
}
