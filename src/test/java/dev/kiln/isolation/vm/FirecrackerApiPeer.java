package dev.kiln.isolation.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * The other end of kiln's Firecracker API client, for tests, <b>not a Firecracker</b>: it listens on a unix socket as
 * {@code firecracker --api-sock} does, reads each HTTP/1.1 request, checks its body against Firecracker's API
 * definition ({@link SwaggerSchema}), records it, and answers 204 — or what {@link Handler} says, which may also do
 * what Firecracker would do on disk (write a snapshot's files). What it checks is what kiln sends and in which order.
 */
final class FirecrackerApiPeer implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** One request as it arrived. */
    record Call(String method, String path, JsonNode body) {
        String line() {
            return method + " " + path;
        }
    }

    /** What to answer a call: its HTTP status and a fault message for a refusal; may act first. */
    interface Handler {
        Reply handle(Call call) throws IOException;
    }

    record Reply(int status, String fault) {
        static final Reply OK = new Reply(204, null);
    }

    private final Path socket;
    private final SwaggerSchema api;
    private final Handler handler;
    private final List<Call> calls = Collections.synchronizedList(new ArrayList<>());
    private final List<String> problems = Collections.synchronizedList(new ArrayList<>());
    private ServerSocketChannel server;

    FirecrackerApiPeer(Path socket, SwaggerSchema api, Handler handler) {
        this.socket = socket;
        this.api = api;
        this.handler = handler;
    }

    /** Binds the socket (a stale one removed first) and serves in the background until {@link #close}. */
    FirecrackerApiPeer start() throws IOException {
        Files.deleteIfExists(socket);
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(socket));
        Thread.ofVirtual().start(() -> {
            while (server.isOpen()) {
                try (SocketChannel ch = server.accept()) {
                    serve(ch);
                } catch (IOException e) {
                    if (server.isOpen()) problems.add("peer: " + e.getMessage());
                }
            }
        });
        return this;
    }

    List<Call> calls() {
        synchronized (calls) {
            return List.copyOf(calls);
        }
    }

    List<String> lines() {
        return calls().stream().map(Call::line).toList();
    }

    /** Every way a request did not match the API definition (empty: all were Firecracker's). */
    List<String> problems() {
        synchronized (problems) {
            return List.copyOf(problems);
        }
    }

    private void serve(SocketChannel ch) throws IOException {
        InputStream in = Channels.newInputStream(ch);
        String[] start = line(in).split(" ");
        long length = 0;
        for (String h = line(in); !h.isEmpty(); h = line(in)) {
            int colon = h.indexOf(':');
            if (colon > 0 && h.substring(0, colon).strip().toLowerCase(Locale.ROOT).equals("content-length")) {
                length = Long.parseLong(h.substring(colon + 1).strip());
            }
        }
        byte[] body = in.readNBytes((int) length);
        Call call = new Call(start[0], start[1], length == 0 ? null : JSON.readTree(body));
        calls.add(call);
        for (String p : api.check(call.method(), call.path(), call.body())) problems.add(call.line() + ": " + p);
        Reply reply = handler.handle(call);
        OutputStream out = Channels.newOutputStream(ch);
        String fault = reply.fault() == null ? "" : JSON.writeValueAsString(JSON.createObjectNode()
                .put("fault_message", reply.fault()));
        out.write(("HTTP/1.1 " + reply.status() + " \r\nServer: Firecracker API\r\nConnection: close\r\n"
                + (fault.isEmpty() ? "" : "Content-Type: application/json\r\nContent-Length: " + fault.length() + "\r\n")
                + "\r\n" + fault).getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static String line(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (int c = in.read(); c != '\n'; c = in.read()) {
            if (c < 0) throw new IOException("connection closed in the request header");
            if (c != '\r') b.write(c);
        }
        return b.toString(StandardCharsets.US_ASCII);
    }

    @Override
    public void close() throws IOException {
        if (server != null) server.close();
        Files.deleteIfExists(socket);
    }
}
