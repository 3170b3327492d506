package dev.kiln.image.registry;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Manifest;
import dev.kiln.testing.Command;
import dev.kiln.testing.Fixture;
import dev.kiln.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A registry that redirects blob downloads to a separate storage origin (docker-registry's {@code redirect} storage
 * middleware, as S3/GCS-backed registries do): the blob arrives, and the registry credentials never reach storage.
 */
class BlobRedirectTest {

    @TempDir
    Path work;

    @Test
    void followsTheRedirectWithoutLeakingAuthorization() throws IOException {
        Command.require("htpasswd", "apache2-utils");
        Path htpasswd = work.resolve("htpasswd");
        Files.writeString(htpasswd, Command.run("htpasswd", "-Bbn", "u", "pw"));
        List<String> storageAuthorization = new CopyOnWriteArrayList<>();
        List<String> storagePaths = new CopyOnWriteArrayList<>();
        Path registryDir = Files.createDirectories(work.resolve("registry"));
        HttpServer storage = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        storage.createContext("/", exchange -> {
            storagePaths.add(exchange.getRequestURI().getPath());
            String auth = exchange.getRequestHeaders().getFirst("Authorization");
            storageAuthorization.add(auth == null ? "(none)" : auth);
            Path file = registryDir.resolve("storage").resolve(exchange.getRequestURI().getPath().substring(1)).normalize();
            if (!file.startsWith(registryDir) || !Files.isRegularFile(file)) {
                exchange.sendResponseHeaders(404, -1);
                exchange.close();
                return;
            }
            boolean head = exchange.getRequestMethod().equals("HEAD");
            exchange.sendResponseHeaders(200, head ? -1 : Files.size(file));
            try (OutputStream out = exchange.getResponseBody()) {
                if (!head) {
                    Files.copy(file, out);
                }
            }
        });
        storage.start();
        try (RegistryProcess registry = RegistryProcess.start(registryDir, """
                auth:
                  htpasswd:
                    realm: kiln-redirect
                    path: %s
                middleware:
                  storage:
                    - name: redirect
                      options:
                        baseurl: http://127.0.0.1:%d/
                """.formatted(htpasswd, storage.getAddress().getPort()))) {
            Fixture layout = Fixtures.busyboxLayout(work);
            Command.run("skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                    "--dest-creds", "u:pw", layout.ociRef(), "docker://" + registry.host() + "/busybox:latest");
            storageAuthorization.clear();
            RegistryClient client = RegistryClient.connect(registry.host(),
                    new RegistryAccess(true, Credentials.of("u", "pw")));

            FetchedManifest fetched = client.fetchManifest("busybox", "latest");
            Manifest manifest = new ObjectMapper().readValue(fetched.bytes(), Manifest.class);
            Descriptor layer = manifest.layers().getFirst();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            client.fetchBlob("busybox", layer, out, p -> { });

            assertThat(Digest.of(out.toByteArray())).isEqualTo(layer.contentDigest());
            assertThat(storagePaths).anyMatch(p -> p.contains(layer.contentDigest().hex()));
            assertThat(storageAuthorization).isNotEmpty().containsOnly("(none)");
            assertThat(client.hasBlob("busybox", layer.contentDigest())).isTrue(); // HEAD follows the redirect too
        } finally {
            storage.stop(0);
        }
    }
}
