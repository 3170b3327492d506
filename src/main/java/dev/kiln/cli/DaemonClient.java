package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * HTTP/1.1 to kilnd, one request per connection, over its unix socket or (with {@code -H tcp://…}) over TCP with
 * mutual TLS ({@link TlsTransport}, loaded only for such hosts). Hand-written rather than a client library: the CLI
 * must start in well under 300 ms, and attach/stdin streams need the raw socket in both directions, which the general
 * clients hide.
 */
final class DaemonClient implements Jackson {

    /** How connections to kilnd are made. */
    interface Transport {
        Connection open() throws IOException;

        /** Where kilnd is, for messages: {@code unix:///run/kiln/kiln.sock}, {@code tcp://host:2376}. */
        String where();

        /**
         * What to throw for {@code e}, an I/O failure while a request was sent or its response read: {@code e} itself,
         * or a one-line {@link KilnException} when the transport knows better (a refused TLS handshake).
         */
        default IOException failed(IOException e) {
            return e;
        }
    }

    /** One connection: its two directions; closing closes both. */
    /** One connection's two directions, and what closes it. */
    record Connection(InputStream in, OutputStream out, java.io.Closeable socket) implements java.io.Closeable {
        @Override
        public void close() throws IOException {
            socket.close();
        }
    }

    /** kilnd's unix socket: no TLS (the socket's mode and group are the access control). */
    record UnixTransport(Path socket) implements Transport {
        @Override
        public Connection open() throws IOException {
            SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                ch.connect(UnixDomainSocketAddress.of(socket));
            } catch (IOException e) {
                ch.close();
                throw e;
            }
            return new Connection(Channels.newInputStream(ch), Channels.newOutputStream(ch), ch);
        }

        @Override
        public String where() {
            return socket.toString();
        }
    }

    /**
     * The local kilnd's socket, started ({@link DaemonStarter}) when nothing answers there at the first connection of
     * this process; later failures are reported as they are (a kilnd that went away mid-command is not restarted).
     */
    static final class StartingTransport implements Transport {
        private final Transport local;
        private final Runnable start;
        private boolean tried;

        StartingTransport(Transport local, Runnable start) {
            this.local = local;
            this.start = start;
        }

        @Override
        public synchronized Connection open() throws IOException {
            if (tried) {
                return local.open();
            }
            tried = true;
            try {
                return local.open();
            } catch (IOException e) {
                start.run(); // returns once kilnd answers, or throws its one-line reason
                return local.open();
            }
        }

        @Override
        public String where() {
            return local.where();
        }

        @Override
        public IOException failed(IOException e) {
            return local.failed(e);
        }
    }

    private final Transport transport;

    DaemonClient(Path socket) {
        this(new UnixTransport(socket));
    }

    DaemonClient(Transport transport) {
        this.transport = transport;
    }

    /** A response whose body is read as a stream; close it to close the connection. */
    static final class Response implements AutoCloseable {
        final int status;
        final Map<String, String> headers;
        final InputStream body;
        private final Connection channel;

        Response(int status, Map<String, String> headers, InputStream body, Connection channel) {
            this.status = status;
            this.headers = headers;
            this.body = body;
            this.channel = channel;
        }

        byte[] bytes() throws IOException {
            return body.readAllBytes();
        }

        JsonNode json() throws IOException {
            return JSON.readTree(bytes());
        }

        /** The body as {@link Json}, without Jackson. */
        Json tree() throws IOException {
            try {
                return Json.parse(bytes());
            } catch (IllegalArgumentException e) {
                throw new IOException("kilnd sent bad JSON: " + e.getMessage(), e);
            }
        }

        /** Throws the daemon's one-line error unless the status is 2xx. */
        Response ok() throws IOException {
            if (status / 100 != 2) {
                byte[] b = bytes();
                String message;
                Integer exitCode = null;
                try {
                    Json n = Json.parse(b);
                    message = n.path("message").asText("kilnd answered " + status);
                    if (n.has("exitCode")) {
                        exitCode = n.path("exitCode").asInt();
                    }
                } catch (IllegalArgumentException e) {
                    message = "kilnd answered " + status + ": " + new String(b, StandardCharsets.UTF_8).strip();
                }
                close();
                if (exitCode != null) {
                    throw KilnException.command(exitCode, message);
                }
                throw new KilnException(kind(status), message);
            }
            return this;
        }

        @Override
        public void close() {
            try {
                channel.close();
            } catch (IOException ignored) {
                // nothing to do about a socket that will not close
            }
        }
    }

    private static KilnException.Kind kind(int status) {
        return switch (status) {
            case 404 -> KilnException.Kind.NOT_FOUND;
            case 400 -> KilnException.Kind.INVALID_ARGUMENT;
            case 409 -> KilnException.Kind.CONFLICT;
            case 401, 403 -> KilnException.Kind.UNAUTHORIZED;
            case 502, 503 -> KilnException.Kind.UNAVAILABLE;
            default -> KilnException.Kind.INTERNAL;
        };
    }

    Connection connect() throws IOException {
        return transport.open();
    }

    Response call(String method, String path) throws IOException {
        return send(method, path, null, null);
    }

    Response call(String method, String path, Object jsonBody) throws IOException {
        String json = Json.request(jsonBody);
        return send(method, path, "application/json",
                json != null ? json.getBytes(StandardCharsets.UTF_8) : JSON.writeValueAsBytes(jsonBody));
    }

    Response send(String method, String path, String contentType, byte[] body) throws IOException {
        Connection ch = connectOrExplain();
        try {
            return sendOn(ch, method, path, contentType, body);
        } catch (IOException e) {
            ch.close();
            throw transport.failed(e);
        }
    }

    private static Response sendOn(Connection ch, String method, String path, String contentType, byte[] body)
            throws IOException {
        OutputStream out = ch.out();
        StringBuilder h = new StringBuilder(method).append(' ').append(path).append(" HTTP/1.1\r\nHost: kiln\r\n")
                .append("Connection: close\r\n");
        if (body != null) {
            h.append("Content-Type: ").append(contentType).append("\r\nContent-Length: ").append(body.length)
                    .append("\r\n");
        }
        h.append("\r\n");
        // one write: a body that arrives with its headers is never counted among a peer's unfinished bodies, which
        // kilnd bounds (ApiLimits); written apart, a loaded host could let kilnd see the headers alone and refuse it
        byte[] head = h.toString().getBytes(StandardCharsets.ISO_8859_1);
        byte[] request = body == null ? head : java.util.Arrays.copyOf(head, head.length + body.length);
        if (body != null) {
            System.arraycopy(body, 0, request, head.length, body.length);
        }
        out.write(request);
        out.flush();
        return readResponse(ch);
    }

    /** Sends {@code body} as a chunked request body, streaming it as it is read; then returns the response. */
    Response stream(String method, String path, String contentType, InputStream body) throws IOException {
        Connection ch = connectOrExplain();
        try {
            return streamOn(ch, method, path, contentType, body);
        } catch (IOException e) {
            ch.close();
            throw transport.failed(e);
        }
    }

    private static Response streamOn(Connection ch, String method, String path, String contentType, InputStream body)
            throws IOException {
        OutputStream out = ch.out();
        out.write((method + " " + path + " HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\nContent-Type: "
                + contentType + "\r\nTransfer-Encoding: chunked\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
        byte[] buf = new byte[64 * 1024];
        int n;
        IOException sending = null;
        while (sending == null && (n = body.read(buf)) > 0) { // a failure to read the input is thrown as it is
            try {
                out.write((Integer.toHexString(n) + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
                out.write(buf, 0, n);
                out.write("\r\n".getBytes(StandardCharsets.ISO_8859_1));
                out.flush();
            } catch (IOException e) {
                sending = e;
            }
        }
        if (sending == null) {
            try {
                out.write("0\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
                out.flush();
            } catch (IOException e) {
                sending = e;
            }
        }
        if (sending != null) {
            // kilnd stopped reading and answered before the body's end (an error such as a full disk), then
            // closed: its answer, already on the way, says why; "Broken pipe" or "Connection reset" would not
            try {
                return readResponse(ch);
            } catch (IOException none) {
                sending.addSuppressed(none);
                throw sending;
            }
        }
        return readResponse(ch);
    }

    private Connection connectOrExplain() {
        try {
            return connect();
        } catch (IOException e) {
            IOException why = transport.failed(e);
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot reach kilnd at " + transport.where()
                    + ": " + why.getMessage() + " (is it running? start it with 'kiln daemon')");
        }
    }

    private static Response readResponse(Connection ch) throws IOException {
        InputStream in = new BufferedInputStream(ch.in(), 64 * 1024);
        String statusLine = line(in);
        if (statusLine == null || !statusLine.startsWith("HTTP/1.")) {
            ch.close();
            throw new IOException("kilnd sent no HTTP response");
        }
        int status = Integer.parseInt(statusLine.split(" ")[1]);
        Map<String, String> headers = new LinkedHashMap<>();
        String l;
        while ((l = line(in)) != null && !l.isEmpty()) {
            int c = l.indexOf(':');
            if (c > 0) {
                headers.put(l.substring(0, c).strip().toLowerCase(Locale.ROOT), l.substring(c + 1).strip());
            }
        }
        InputStream body;
        if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
            body = new Chunked(in);
        } else if (headers.containsKey("content-length")) {
            body = new Bounded(in, Long.parseLong(headers.get("content-length")));
        } else {
            body = in;
        }
        return new Response(status, headers, body, ch);
    }

    private static String line(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int c;
        while ((c = in.read()) >= 0) {
            if (c == '\n') {
                break;
            }
            if (c != '\r') {
                b.write(c);
            }
        }
        return c < 0 && b.size() == 0 ? null : b.toString(StandardCharsets.ISO_8859_1);
    }

    /** A response body read in blocks; the single-byte read goes through the block read. */
    private abstract static class Body extends InputStream {
        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }
    }

    /** A Content-Length body. */
    private static final class Bounded extends Body {
        private final InputStream in;
        private long left;

        Bounded(InputStream in, long length) {
            this.in = in;
            this.left = length;
        }


        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (left <= 0) {
                return -1;
            }
            int n = in.read(b, off, (int) Math.min(len, left));
            if (n > 0) {
                left -= n;
            }
            return n;
        }
    }

    /** A chunked body, decoded as it arrives so streams (logs -f, attach) flow without delay. */
    private static final class Chunked extends Body {
        private final InputStream in;
        private long left;
        private boolean done;

        Chunked(InputStream in) {
            this.in = in;
        }


        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (done) {
                return -1;
            }
            if (left == 0) {
                String size = line(in);
                if (size == null) {
                    throw new IOException("kilnd ended the response early (see its log)");
                }
                int semi = size.indexOf(';');
                left = Long.parseLong((semi >= 0 ? size.substring(0, semi) : size).strip(), 16);
                if (left == 0) {
                    done = true;
                    return -1;
                }
            }
            int n = in.read(b, off, (int) Math.min(len, left));
            if (n < 0) {
                throw new IOException("kilnd ended the response early (see its log)");
            }
            left -= n;
            if (left == 0) {
                line(in);
            }
            return n;
        }
    }
}
