package dev.kiln.image.registry;

import com.sun.net.httpserver.HttpServer;
import dev.kiln.KilnException;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.MediaType;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A download that stops mid-body must fail instead of hanging. No real registry can be made to stall on cue, so a
 * JDK HttpServer plays one that sends half a blob and then goes silent.
 */
class StalledBlobTest {

    @Test
    void aBodyWithoutBytesForTheStallTimeAborts() throws IOException {
        byte[] blob = new byte[1 << 20];
        Digest digest = Digest.of(blob);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/v2/stall/blobs/", exchange -> {
            exchange.sendResponseHeaders(200, blob.length);
            OutputStream out = exchange.getResponseBody();
            out.write(blob, 0, blob.length / 2);
            out.flush();
            try {
                release.await(30, java.util.concurrent.TimeUnit.SECONDS);
            } catch (InterruptedException ignored) {
                // server stopping
            }
            exchange.close();
        });
        server.start();
        try {
            String host = "127.0.0.1:" + server.getAddress().getPort();
            RegistryClient client = RegistryClient.connect(host, new RegistryAccess(true, Credentials.none()),
                    Duration.ofMillis(400));
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            long start = System.nanoTime();

            assertThatThrownBy(() -> client.fetchBlob("stall", new Descriptor(MediaType.OCI_LAYER, digest, blob.length),
                    out, p -> { }))
                    .isInstanceOfSatisfying(KilnException.class, e -> {
                        assertThat(e.kind()).isEqualTo(KilnException.Kind.UNAVAILABLE);
                        assertThat(e.getMessage()).contains(host, "no data received for 400 ms");
                    });
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
            assertThat(out.size()).isEqualTo(blob.length / 2);
        } finally {
            release.countDown();
            server.stop(0);
        }
    }
}
