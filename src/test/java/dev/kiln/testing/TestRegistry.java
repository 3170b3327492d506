package dev.kiln.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Optional;

/**
 * A real Distribution registry ({@code docker-registry serve}) on 127.0.0.1 with storage in a temporary
 * directory, optionally behind htpasswd basic auth. Close it to stop the process and remove the storage.
 */
public final class TestRegistry implements AutoCloseable {
    /** Accept header that makes the registry serve any manifest kind as stored. */
    public static final String MANIFEST_ACCEPT = String.join(", ",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json");

    private static final Duration STARTUP_TIMEOUT = Duration.ofSeconds(15);

    /** Basic-auth user and password. */
    public record Credentials(String user, String password) {
        /** {@code user:password}, the form skopeo's --creds options take. */
        public String joined() {
            return user + ":" + password;
        }
    }

    private final Path dir;
    private final int port;
    private final Process process;
    private final Credentials credentials;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private TestRegistry(Path dir, int port, Process process, Credentials credentials) {
        this.dir = dir;
        this.port = port;
        this.process = process;
        this.credentials = credentials;
    }

    /** Starts an anonymous registry; skips the test when docker-registry is not installed. */
    public static TestRegistry start() {
        return start(null);
    }

    /** Starts a registry requiring basic auth (htpasswd, bcrypt); skips when docker-registry or htpasswd is absent. */
    public static TestRegistry startWithBasicAuth(String user, String password) {
        Command.require("htpasswd", "apache2-utils");
        return start(new Credentials(user, password));
    }

    private static TestRegistry start(Credentials credentials) {
        Command.require("docker-registry", "docker-registry");
        Path dir;
        try {
            dir = Files.createTempDirectory("kiln-registry-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        try {
            IllegalStateException last = null;
            for (int attempt = 0; attempt < 3; attempt++) { // a free port can be taken between probe and bind
                try {
                    return launch(dir, freePort(), credentials);
                } catch (IllegalStateException e) {
                    last = e;
                }
            }
            throw last;
        } catch (RuntimeException e) {
            FileTree.deleteRecursively(dir);
            throw e;
        }
    }

    private static TestRegistry launch(Path dir, int port, Credentials credentials) {
        try {
            Path config = dir.resolve("config-" + port + ".yml");
            Path log = dir.resolve("registry-" + port + ".log");
            Files.writeString(config, configYaml(dir, port, credentials));
            Process process = new ProcessBuilder("docker-registry", "serve", config.toString())
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .start();
            TestRegistry registry = new TestRegistry(dir, port, process, credentials);
            registry.awaitReady(log);
            return registry;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start docker-registry in " + dir, e);
        }
    }

    private static String configYaml(Path dir, int port, Credentials credentials) throws IOException {
        Path storage = Files.createDirectories(dir.resolve("storage"));
        String auth = "";
        if (credentials != null) {
            Path htpasswd = dir.resolve("htpasswd");
            // the registry accepts only bcrypt entries (-B)
            Files.writeString(htpasswd, Command.run("htpasswd", "-Bbn", credentials.user(), credentials.password()));
            auth = "auth:\n  htpasswd:\n    realm: kiln-test\n    path: " + htpasswd + "\n";
        }
        return """
                version: 0.1
                log:
                  level: error
                  accesslog:
                    disabled: true
                storage:
                  filesystem:
                    rootdirectory: %s
                  delete:
                    enabled: true
                http:
                  addr: 127.0.0.1:%d
                %s""".formatted(storage, port, auth);
    }

    private void awaitReady(Path log) {
        long deadline = System.nanoTime() + STARTUP_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException("docker-registry exited with " + process.exitValue()
                        + " on port " + port + ": " + Command.tail(log));
            }
            try {
                HttpResponse<Void> response = http.send(
                        HttpRequest.newBuilder(URI.create(url() + "/v2/")).timeout(Duration.ofSeconds(2)).build(),
                        HttpResponse.BodyHandlers.discarding());
                int status = response.statusCode();
                if (status == 200 || (credentials != null && status == 401)) return;
            } catch (ConnectException e) {
                // not listening yet
            } catch (IOException e) {
                // retry until the deadline
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            sleep(50);
        }
        Command.destroyTree(process.toHandle());
        throw new IllegalStateException("docker-registry did not answer GET /v2/ on " + host() + " within "
                + STARTUP_TIMEOUT.toSeconds() + " s: " + Command.tail(log));
    }

    /** {@code 127.0.0.1:PORT}, the registry part of an image reference. */
    public String host() {
        return "127.0.0.1:" + port;
    }

    /** {@code http://127.0.0.1:PORT}. */
    public String url() {
        return "http://" + host();
    }

    /** {@code HOST/name:tag}. */
    public String ref(String name, String tag) {
        return host() + "/" + name + ":" + tag;
    }

    /** The registry's filesystem storage root (docker/registry/v2/...), for tests that tamper with stored blobs. */
    public Path storage() {
        return dir.resolve("storage");
    }

    /** The basic-auth credentials, when this registry requires them. */
    public Optional<Credentials> credentials() {
        return Optional.ofNullable(credentials);
    }

    /** GET {@code url() + path} with the registry's credentials (if any) and the given header name/value pairs. */
    public HttpResponse<byte[]> get(String path, String... headers) {
        return send(request(path, headers).GET().build());
    }

    /** GET a manifest (any kind) by tag or digest. */
    public HttpResponse<byte[]> getManifest(String name, String reference) {
        return get("/v2/" + name + "/manifests/" + reference, "Accept", MANIFEST_ACCEPT);
    }

    /** PUT a body to {@code url() + path} with the given content type and the registry's credentials (if any). */
    public HttpResponse<byte[]> put(String path, String contentType, byte[] body) {
        return send(request(path, "Content-Type", contentType)
                .PUT(HttpRequest.BodyPublishers.ofByteArray(body)).build());
    }

    private HttpRequest.Builder request(String path, String... headers) {
        HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(url() + path)).timeout(Duration.ofSeconds(30));
        if (headers.length > 0) builder.headers(headers);
        if (credentials != null) {
            String token = Base64.getEncoder().encodeToString(credentials.joined().getBytes(StandardCharsets.UTF_8));
            builder.header("Authorization", "Basic " + token);
        }
        return builder;
    }

    private HttpResponse<byte[]> send(HttpRequest request) {
        try {
            return http.send(request, HttpResponse.BodyHandlers.ofByteArray());
        } catch (IOException e) {
            throw new UncheckedIOException(request.method() + " " + request.uri() + " failed", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted: " + request.method() + " " + request.uri(), e);
        }
    }

    @Override
    public void close() {
        Command.destroyTree(process.toHandle());
        http.close();
        FileTree.deleteRecursively(dir);
    }

    @Override
    public String toString() {
        return "TestRegistry[" + host() + (credentials != null ? ", basic auth" : "") + "]";
    }

    private static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free TCP port on 127.0.0.1", e);
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static List<String> credsArgs(TestRegistry registry, String option) {
        return registry.credentials().map(c -> List.of(option, c.joined())).orElse(List.of());
    }
}
