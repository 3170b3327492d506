package dev.kiln.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Bytes to kilnd's socket and the answer back, with no kiln code in between: for requests the CLI would never send
 * (garbage JSON, broken HTTP) and for watching the API while CLI commands run.
 */
final class RawHttp {

    record Response(int status, String headers, String body) {
        JsonNode json() {
            try {
                return new ObjectMapper().readTree(body);
            } catch (IOException e) {
                throw new AssertionError("not JSON (status " + status + "): " + body, e);
            }
        }
    }

    private RawHttp() {
    }

    /** {@code METHOD PATH} with {@code body} (null for none) as {@code application/json}. */
    static Response request(Path socket, String method, String path, String body) {
        return request(socket, method, path, body == null ? null : body.getBytes(StandardCharsets.UTF_8),
                "application/json");
    }

    /** {@code METHOD PATH} with {@code content} (null for none) as {@code contentType}. */
    static Response request(Path socket, String method, String path, byte[] body, String contentType) {
        byte[] content = body == null ? new byte[0] : body;
        String head = method + " " + path + " HTTP/1.1\r\nHost: kilnd\r\nConnection: close\r\n"
                + (body == null ? "" : "Content-Type: " + contentType + "\r\nContent-Length: " + content.length
                + "\r\n") + "\r\n";
        byte[] h = head.getBytes(StandardCharsets.US_ASCII);
        byte[] all = new byte[h.length + content.length];
        System.arraycopy(h, 0, all, 0, h.length);
        System.arraycopy(content, 0, all, h.length, content.length);
        return send(socket, all);
    }

    /** Sends {@code bytes} as they are, reads until the server closes, and parses the HTTP response. */
    static Response send(Path socket, byte[] bytes) {
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            ch.write(ByteBuffer.wrap(bytes));
            ch.shutdownOutput();
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            ByteBuffer buf = ByteBuffer.allocate(8192);
            while (ch.read(buf) >= 0) {
                got.write(buf.array(), 0, buf.position());
                buf.clear();
            }
            return parse(got.toString(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("talking to " + socket, e);
        }
    }

    private static Response parse(String raw) {
        int end = raw.indexOf("\r\n\r\n");
        if (!raw.startsWith("HTTP/1.1 ") || end < 0) {
            throw new AssertionError("not an HTTP response: " + raw);
        }
        String headers = raw.substring(0, end);
        String body = raw.substring(end + 4);
        if (headers.toLowerCase(Locale.ROOT).contains("transfer-encoding: chunked")) {
            body = dechunk(body);
        }
        return new Response(Integer.parseInt(raw.substring(9, 12)), headers, body);
    }

    private static String dechunk(String s) {
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < s.length()) {
            int eol = s.indexOf("\r\n", i);
            if (eol < 0) {
                break;
            }
            int size = Integer.parseInt(s.substring(i, eol).split(";")[0].strip(), 16);
            if (size == 0) {
                break;
            }
            out.append(s, eol + 2, Math.min(s.length(), eol + 2 + size));
            i = eol + 2 + size + 2;
        }
        return out.toString();
    }
}
