package dev.kiln.isolation.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A minimal QMP client (QEMU's JSON control protocol on a unix socket): the capabilities handshake and one command
 * at a time. Every exchange is bounded by a timeout, so a hung VMM cannot hang kiln.
 */
final class Qmp implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final SocketChannel channel;
    private final BufferedReader in;
    private final OutputStream out;
    private final Duration timeout;

    private Qmp(SocketChannel channel, Duration timeout) {
        this.channel = channel;
        this.in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
        this.out = Channels.newOutputStream(channel);
        this.timeout = timeout;
    }

    /** Connects and negotiates capabilities. */
    static Qmp connect(Path socket, Duration timeout) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            VmmSocket.connect(ch, socket);
            Qmp q = new Qmp(ch, timeout);
            q.response(true); // the greeting
            q.execute("qmp_capabilities");
            return q;
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** Runs a command and returns its "return" value; an "error" answer becomes an IOException. */
    JsonNode execute(String command) throws IOException {
        out.write(("{\"execute\":\"" + command + "\"}\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        return response(false);
    }

    private JsonNode response(boolean greeting) throws IOException {
        FutureTask<JsonNode> read = new FutureTask<>(() -> {
            while (true) {
                String line = in.readLine();
                if (line == null) {
                    if (greeting) throw new IOException("QMP closed before its greeting");
                    return null; // e.g. after "quit": the VMM is gone
                }
                JsonNode msg = JSON.readTree(line);
                if (greeting && msg.has("QMP")) return msg;
                if (msg.has("return")) return msg.get("return");
                if (msg.has("error")) throw new IOException("QMP: " + msg.path("error").path("desc").asText());
                // events are skipped
            }
        });
        Thread.ofVirtual().start(read);
        try {
            return read.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            channel.close();
            throw new IOException("QMP did not answer within " + timeout.toMillis() + " ms");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while talking QMP");
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
