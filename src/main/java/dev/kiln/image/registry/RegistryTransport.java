package dev.kiln.image.registry;

import dev.kiln.KilnException;
import dev.kiln.KilnException.Kind;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * HTTP to one registry host, beneath the endpoint classes: adds authorization (retrying once after a 401), follows
 * redirects itself so credentials never travel to another origin (registries redirect blob downloads to storage
 * hosts), and turns transport failures into {@link KilnException}s.
 */
final class RegistryTransport {

    static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    static final Duration DEFAULT_STALL = Duration.ofSeconds(60);
    private static final int MAX_REDIRECTS = 10;

    /** One client per process: it owns the connection pool and its selector thread. */
    private static final class Shared {
        static final HttpClient HTTP = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1) // registries and their storage CDNs speak it everywhere
                .connectTimeout(CONNECT_TIMEOUT)
                .followRedirects(HttpClient.Redirect.NEVER) // we follow them, to control Authorization
                .build();
    }

    /**
     * One request. {@code body} is a supplier because a request may be sent twice (after a 401); {@code timeout}
     * bounds the wait for the response headers (null: none).
     */
    record Request(String method, URI uri, Scope scope, List<String> headers,
                   Supplier<HttpRequest.BodyPublisher> body, Duration timeout) {

        static Request get(URI uri, Scope scope, Duration timeout, String... headers) {
            return new Request("GET", uri, scope, List.of(headers), null, timeout);
        }
    }

    private final String host;
    private final String scheme;
    private final Authenticator authenticator;
    private final Duration stall;

    RegistryTransport(String host, RegistryAccess access, Duration stall) {
        this.host = host;
        this.scheme = access.plainHttp() ? "http" : "https";
        this.authenticator = new Authenticator(host, access.credentials());
        this.stall = stall;
    }

    static HttpClient http() {
        return Shared.HTTP;
    }

    String host() {
        return host;
    }

    Duration stall() {
        return stall;
    }

    /** {@code /v2/…} on this registry. */
    URI uri(String path) {
        return URI.create(scheme + "://" + host + path);
    }

    /**
     * Sends the request and returns the final response with its body unread; the caller must close the body. A 401
     * from the registry is answered once with fresh authorization; a second one is an UNAUTHORIZED error.
     */
    HttpResponse<InputStream> send(Request request) {
        for (int attempt = 0; ; attempt++) {
            Optional<String> authorization = authenticator.authorization(request.scope());
            HttpResponse<InputStream> response = follow(request, authorization);
            if (response.statusCode() != 401 || !sameOrigin(response.uri())) {
                return response;
            }
            List<String> challenges = response.headers().allValues("WWW-Authenticate");
            discard(response);
            if (attempt > 0) {
                throw authenticator.failed();
            }
            authenticator.challenged(challenges, request.scope());
        }
    }

    private HttpResponse<InputStream> follow(Request request, Optional<String> authorization) {
        URI uri = request.uri();
        String method = request.method();
        Supplier<HttpRequest.BodyPublisher> body = request.body();
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpRequest.Builder b = HttpRequest.newBuilder(uri)
                    .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : body.get());
            if (!request.headers().isEmpty()) {
                b.headers(request.headers().toArray(String[]::new));
            }
            if (authorization.isPresent() && sameOrigin(uri)) {
                b.header("Authorization", authorization.get());
            }
            if (request.timeout() != null) {
                b.timeout(request.timeout());
            }
            HttpResponse<InputStream> response = exchange(b.build());
            int status = response.statusCode();
            Optional<String> location = response.headers().firstValue("Location");
            if (!isRedirect(status) || location.isEmpty()) {
                return response;
            }
            discard(response);
            try {
                uri = uri.resolve(location.get());
            } catch (IllegalArgumentException e) {
                throw new KilnException(Kind.UNAVAILABLE, "registry " + host + " redirected to an invalid URL \""
                        + location.get() + "\"");
            }
            if (status == 303) {
                method = "GET";
                body = null;
            }
        }
        throw new KilnException(Kind.UNAVAILABLE, "registry " + host + " redirected more than " + MAX_REDIRECTS
                + " times for " + request.uri().getPath() + " (check the registry's storage configuration)");
    }

    private HttpResponse<InputStream> exchange(HttpRequest request) {
        try {
            return Shared.HTTP.send(request, HttpResponse.BodyHandlers.ofInputStream());
        } catch (IOException e) {
            throw RegistryError.unreachable(request.uri().getAuthority(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(Kind.UNAVAILABLE, "interrupted while talking to registry " + host, e);
        }
    }

    /** Same scheme, host and port as the registry: only there may credentials go (as Go's net/http decides). */
    boolean sameOrigin(URI uri) {
        URI origin = uri("/");
        return origin.getScheme().equalsIgnoreCase(uri.getScheme())
                && origin.getHost().equalsIgnoreCase(uri.getHost())
                && port(origin) == port(uri);
    }

    private static int port(URI u) {
        return u.getPort() >= 0 ? u.getPort() : u.getScheme().equalsIgnoreCase("https") ? 443 : 80;
    }

    private static boolean isRedirect(int status) {
        return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    }

    /** Reads a little of an unwanted body so the connection can be reused, then closes it. */
    static void discard(HttpResponse<InputStream> response) {
        try (InputStream in = response.body()) {
            in.readNBytes(16 * 1024);
        } catch (IOException ignored) {
            // nothing more to learn from it
        }
    }
}
