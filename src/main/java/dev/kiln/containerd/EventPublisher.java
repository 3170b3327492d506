package dev.kiln.containerd;

import com.google.protobuf.Any;
import com.google.protobuf.Message;
import com.google.protobuf.Timestamp;
import dev.kiln.containerd.wire.events.Envelope;
import dev.kiln.containerd.wire.events.ForwardRequest;
import dev.kiln.containerd.wire.ttrpc.KeyValue;
import dev.kiln.containerd.wire.ttrpc.Request;
import dev.kiln.containerd.wire.ttrpc.Response;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.time.Instant;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * Sends task events to containerd in the order they happened: over TTRPC to {@code $TTRPC_ADDRESS} (the events
 * service's Forward, as containerd's own shims do) or, without that address, through {@code -publish-binary
 * publish}. Type URLs are containerd's bare names ({@code containerd.events.TaskExit}): containerd 1.6's typeurl
 * does not accept the {@code type.googleapis.com/} prefix protobuf-java's {@code Any.pack} would add.
 */
final class EventPublisher implements AutoCloseable {

    private static final String SERVICE = "containerd.services.events.ttrpc.v1.Events";

    private final String namespace;
    private final String ttrpcAddress;
    private final String publishBinary;
    private final String containerdAddress;
    private final ShimLog log;
    private final ExecutorService queue = Executors.newSingleThreadExecutor(Thread.ofVirtual().factory());
    private TtrpcConnection conn;
    private int nextStream = 1;

    EventPublisher(String namespace, String ttrpcAddress, String publishBinary, String containerdAddress, ShimLog log) {
        this.namespace = namespace;
        this.ttrpcAddress = ttrpcAddress == null || ttrpcAddress.isBlank() ? null : ttrpcAddress;
        this.publishBinary = publishBinary;
        this.containerdAddress = containerdAddress;
        this.log = log;
    }

    /** Queues {@code event} for {@code topic} (e.g. /tasks/exit); returns at once. */
    void publish(String topic, Message event) {
        Any any = Any.newBuilder().setTypeUrl(event.getDescriptorForType().getFullName())
                .setValue(event.toByteString()).build();
        Instant now = Instant.now();
        queue.execute(() -> send(topic, any, now));
    }

    private void send(String topic, Any event, Instant when) {
        // the Go publisher retries a failed event up to 5 times; so does this one
        for (int attempt = 1; attempt <= 5; attempt++) {
            try {
                if (ttrpcAddress != null) forward(topic, event, when);
                else publishBinary(topic, event);
                return;
            } catch (IOException | InterruptedException e) {
                closeConnection();
                if (attempt == 5) log.line("cannot publish " + topic + ": " + e.getMessage());
                try {
                    Thread.sleep(100L * attempt);
                } catch (InterruptedException ie) {
                    return;
                }
            }
        }
    }

    private void forward(String topic, Any event, Instant when) throws IOException {
        Envelope envelope = Envelope.newBuilder()
                .setTimestamp(Timestamp.newBuilder().setSeconds(when.getEpochSecond()).setNanos(when.getNano()))
                .setNamespace(namespace).setTopic(topic).setEvent(event).build();
        Request request = Request.newBuilder().setService(SERVICE).setMethod("Forward")
                .setPayload(ForwardRequest.newBuilder().setEnvelope(envelope).build().toByteString())
                .setTimeoutNano(TimeUnit.SECONDS.toNanos(5))
                .addMetadata(KeyValue.newBuilder().setKey("containerd-namespace-ttrpc").setValue(namespace))
                .build();
        if (conn == null) {
            String path = ttrpcAddress.startsWith("unix://") ? ttrpcAddress.substring(7) : ttrpcAddress;
            SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
            channel.connect(UnixDomainSocketAddress.of(path));
            conn = new TtrpcConnection(channel);
        }
        int stream = nextStream;
        nextStream += 2;
        conn.write(stream, TtrpcConnection.REQUEST, request.toByteArray());
        while (true) {
            TtrpcConnection.Frame frame = conn.read();
            if (frame.stream() != stream || frame.type() != TtrpcConnection.RESPONSE) continue;
            Response response = Response.parseFrom(frame.data());
            if (response.hasStatus() && response.getStatus().getCode() != 0) {
                throw new IOException("containerd refused " + topic + ": " + response.getStatus().getMessage());
            }
            return;
        }
    }

    private void publishBinary(String topic, Any event) throws IOException, InterruptedException {
        Process p = Children.start(new ProcessBuilder(publishBinary, "--address", containerdAddress, "publish", "--topic", topic,
                "--namespace", namespace).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD));
        try (var in = p.getOutputStream()) {
            in.write(event.toByteArray());
        }
        if (!p.waitFor(5, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(publishBinary + " publish did not finish in 5 s");
        }
        if (p.exitValue() != 0) throw new IOException(publishBinary + " publish exited " + p.exitValue());
    }

    private void closeConnection() {
        if (conn != null) conn.close();
        conn = null;
    }

    /** Waits (up to 5 s) for queued events to be sent, e.g. the last TaskExit before the shim exits. */
    @Override
    public void close() {
        queue.shutdown();
        try {
            queue.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException ignored) {
            Thread.currentThread().interrupt();
        }
        closeConnection();
    }
}
